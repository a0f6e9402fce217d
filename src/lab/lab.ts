// The lab: loads profiles, starts the clock, the policy and the event log, and (as they are
// built) the censoring parts, in one process. startLab() is the library API.
import { LabClock } from "../clock/clock.js";
import { EventLog } from "../events/log.js";
import type { Component, LabEvent } from "../events/types.js";
import { compilePolicy, type Policy } from "../policy/engine.js";
import type { Observation, Verdict } from "../policy/types.js";
import type { Profile } from "../profile/model.js";
import { parseInstant } from "../util/time.js";
import { Pki, defaultConfdir } from "../pki/pki.js";
import { buildWorld } from "../world/build.js";
import { OriginProcess } from "../world/origin-process.js";
import type { World } from "../world/world.js";
import { Resolver } from "../resolver/resolver.js";
import { DnsListener } from "../resolver/listeners.js";
import { Forwarder, systemResolvers } from "../resolver/forward.js";
import { ResolverWorkers } from "../resolver/workers.js";
import { Interceptor } from "../interceptor/interceptor.js";
import { Upstream } from "../interceptor/upstream.js";
import { destroyConnections, httpProxyServer, socksServer, transparentServer, type EntryStats } from "../interceptor/entries.js";
import { ORIGIN_PORT, TPROXY_PORT, WORLD_NS, WORLD_PREFIXES, type Plan } from "../transparent/topology.js";
import { prefixMatcher } from "../policy/cidr.js";
import type { Service } from "../relay/protocol.js";
import type { Server } from "node:net";
import type { LabContext } from "./context.js";
import { listenTcp, portFor } from "./listen.js";
import type { Endpoints, LabOptions } from "./options.js";
import { selectProfiles } from "./profiles.js";
import { randomBytes } from "node:crypto";
import { ControlServer } from "../control/server.js";
import type { SeedCatalog } from "../seeds/catalog.js";
import { Relay } from "../relay/relay.js";
import { RelayListener } from "../relay/listener.js";
import { SmsGateway } from "../relay/sms-gateway.js";

export interface Lab {
  endpoints: Endpoints;
  /** Every decision from now on (each `for await` subscribes anew; ends when the lab stops). */
  events: AsyncIterable<LabEvent>;
  eventLog: EventLog;
  clock: LabClock;
  policy: Policy;
  profiles: readonly Profile[];
  /** Who answers behind the censor. */
  world: World;
  /** The lab CA and state CAs (in `confdir`). */
  pki: Pki;
  /** The world's origin server (lab world only): HTTP, HTTPS, DoH stand-ins, TCP echo. */
  origin?: OriginProcess;
  /** The censoring resolver (its counters in `resolver.stats`, helpers' included). */
  resolver: Resolver;
  /** Resolver helper processes, with --dns-workers above 1. */
  resolverWorkers?: ResolverWorkers;
  /** The interceptor (its counters in `interceptor.stats`, residual state in `interceptor.residual`). */
  interceptor: Interceptor;
  /** The messaging relay (its counters in `relay.stats`) and the SMS gateway. */
  relay: Relay;
  smsGateway: SmsGateway;
  /** Counters of the explicit proxies (bad requests, authentication failures, timeouts). */
  proxyStats: { http: EntryStats; socks: EntryStats };
  /** Network of clients that name none. */
  network: string;
  /** The seed events the profiles cite (sources, dates, confidence): the regime's story. */
  seeds: SeedCatalog;
  /** What the lab is doing now (the control API's GET /v1/status). */
  status(): LabStatus;
  /** Moves lab time and clears the residual table, as a fresh start at that instant would. */
  seek(at: string | number | Date): void;
  /** Activates a profile (id or file), or loads it again with another variant. */
  activate(ref: string, variant?: string): Promise<Profile>;
  /** Deactivates a profile by id. */
  deactivate(id: string): Promise<void>;
  /** Clears residual state, held messages and the decision counters. */
  reset(): { residual: number; held: number };
  /** The control API's token, when it is bound beyond loopback. */
  controlToken?: string;
  /** Asks the censor about an observation, as a component would, and records the decision. */
  decide(obs: Observation, opts?: { network?: string; component?: Component; client?: string; flow?: string }): Verdict;
  stop(): Promise<void>;
}

export interface LabStatus {
  profiles: { id: string; title: string; variant?: string; variants: string[]; period: { start: string; end?: string }; timezone: string }[];
  labTime: string;
  clock: { mode: string; speed: number; paused: boolean };
  network: string;
  networks: string[];
  /** Decisions per action, then per network, since start or the last reset. */
  counters: Record<string, Record<string, number>>;
  total: number;
  endpoints: Endpoints;
}

/** An instant option as epoch ms (ISO text in UTC unless it has an offset); a clear error otherwise. */
export function toInstant(v: string | number | Date | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === "number") return v;
  if (v instanceof Date) return v.getTime();
  const t = parseInstant(v, "UTC");
  if (t === undefined) throw new Error(`${what}: not a date or date-time: "${v}" (e.g. 2014-02-13T17:00:00+06:00)`);
  return t;
}

export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  const at = toInstant(opts.at, "at");
  let from = toInstant(opts.from, "from");
  const startInstant = at ?? from ?? (opts.timeSource ?? Date.now)();
  const { profiles, seeds } = selectProfiles({
    refs: opts.profiles ?? [],
    ...(opts.country ? { country: opts.country } : {}),
    ...(at !== undefined || from !== undefined ? { at: startInstant } : {}),
    // A replay (--from) runs on into later regimes; a pinned instant (--at) needs only its own.
    ...(at === undefined && from !== undefined ? { onward: true } : {}),
    ...(opts.variant !== undefined ? { variant: opts.variant } : {}),
    ...(opts.seedDirs ? { seedDirs: opts.seedDirs } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  // With no instant given and a regime entirely in the past, start at its beginning rather
  // than in a present where none of its rules apply.
  if (at === undefined && from === undefined && profiles.length) {
    const now = startInstant;
    const covering = profiles.some((p) => p.period.start <= now && (p.period.end === undefined || now < p.period.end));
    if (!covering) from = Math.max(...profiles.map((p) => p.period.start));
  }
  const clock = new LabClock({
    ...(at !== undefined ? { at } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(opts.speed !== undefined ? { speed: opts.speed } : {}),
    ...(opts.timeSource ? { source: opts.timeSource } : {}),
  });
  const policy = compilePolicy(profiles, {
    labStart: clock.startedAt,
    ...(opts.onProgress ? { onProgress: (done: number, total: number) => opts.onProgress!("compiling rules", done, total) } : {}),
  });
  const network = opts.network ?? profiles[0]?.networks[0] ?? "default";
  const world = buildWorld(profiles, { mode: opts.world ?? "lab" });
  const pki = new Pki(opts.confdir ?? defaultConfdir());
  // The CA clients are told to trust exists from the start, not from the first TLS flow.
  if (world.mode === "lab") pki.authority("lab");
  const host = opts.listen ?? "127.0.0.1";
  const ports = opts.ports ?? "auto";
  const networks = [network, ...new Set(profiles.flatMap((p) => p.networks).filter((n) => n !== network))];
  // Gateway mode (Docker): this namespace becomes the gateway of the client subnets.
  let plan: Plan | undefined = opts.transparent?.plan;
  if (opts.gateway) {
    if (world.mode !== "lab") throw new Error("gateway mode serves the lab world only (--world lab): it must never be a way out for its clients");
    const { gatewayPlan } = await import("../transparent/gateway.js");
    plan = gatewayPlan({
      clients: opts.gateway.clients, networks, services: opts.gateway.services ?? [], pins: Object.values(world.spec.data.hosts).flat(),
      chatUdp: Object.entries(world.spec.data.services ?? {}).map(([service, spec]) => ({ service, ports: spec.chat?.udp ?? [] })),
    });
  }
  const gateway = plan?.mode === "gateway";
  let origin: OriginProcess | undefined;
  if (world.mode === "lab") {
    // The origin answers connections from a process of its own (two cores for serving and
    // intercepting); flows the interceptor allowed are handed to its in-lab instance.
    if (plan && !gateway) {
      // In the world namespace, behind TPROXY: the censor routes allowed flows there for real.
      origin = new OriginProcess(world, pki, { wrap: ["ip", "netns", "exec", WORLD_NS], transparent: true });
      await origin.listen("::", ORIGIN_PORT);
    } else {
      origin = new OriginProcess(world, pki);
      await origin.listen("127.0.0.1", 0);
    }
  }
  const links = plan?.links ?? [];
  /** Transparent and gateway modes: a client's address (or subnet) names its network. */
  const byAddress = new Map(links.flatMap((l) => [l.clientV4, l.clientV6].filter((a): a is string => !!a).map((a) => [a, l.network] as [string, string])));
  const bySubnet = links.filter((l) => l.clientPrefix).map((l) => ({ network: l.network, has: prefixMatcher([l.clientPrefix!]) }));
  const networkOfClient = (ip: string): string | undefined => byAddress.get(ip) ?? bySubnet.find((s) => s.has(ip))?.network;
  const eventLog = new EventLog(opts.events);
  const endpoints: Endpoints = {};
  const ctx: LabContext = { policy, clock, world, pki, events: eventLog };
  const listeners: DnsListener[] = [];
  /** Transparent mode's resolvers on the link addresses (kept apart: workers map `listeners` to networks by index). */
  const linkListeners: DnsListener[] = [];

  let forwarder: Forwarder | undefined;
  if (world.mode === "internet") {
    const upstream = opts.upstream ?? systemResolvers()[0];
    if (!upstream) throw new Error("--world internet needs an upstream resolver (none in /etc/resolv.conf; give --upstream ADDR)");
    forwarder = new Forwarder(upstream);
  }
  const resolver = new Resolver(ctx, forwarder);
  const upstream = new Upstream(world, origin?.address, origin, () => Object.values(endpoints).filter((e): e is { host: string; port: number } => !!e && "port" in e),
    plan ? {
      ownAddresses: new Set([...links.flatMap((l) => [l.censorV4, l.censorV6]), plan.world?.censorV4, plan.world?.censorV6].filter((a): a is string => !!a)),
      servedByOrigin: prefixMatcher([...WORLD_PREFIXES, ...plan.pins]),
      // Gateway mode: the world is served here (its origin on loopback); the censor connects
      // for real only to the service subnets it was given, never to the outside.
      ...(gateway ? { originOnLoopback: true, reachable: prefixMatcher(plan.services ?? []) } : {}),
    } : undefined);
  const interceptor = new Interceptor(ctx, upstream);
  const proxyStats = { http: newEntryStats(), socks: newEntryStats(), transparent: newEntryStats() };
  const servers: Server[] = [];
  let workers: ResolverWorkers | undefined;
  // (Shared with the entries and the relay: profiles activated later add their networks.)
  const networkSet = new Set(networks);
  const relay = new Relay(ctx, { networks, defaultNetwork: network });
  const relayListener = new RelayListener(relay, host);
  const smsGateway = new SmsGateway(relay, host);
  let kernelRules: import("../transparent/kernel-rules.js").KernelRules | undefined;
  let control: ControlServer | undefined;
  let controlToken: string | undefined;
  // The control server listens before the lab object it steers exists (requests wait for it).
  let labObject: Lab | undefined;
  const stopAll = async (): Promise<void> => {
    control?.close();
    kernelRules?.stop();
    await workers?.stop();
    relay.stop();
    await relayListener.close();
    await smsGateway.close();
    await Promise.all(servers.map((srv) => new Promise<void>((r) => { srv.close(() => r()); destroyConnections(srv); })));
    await Promise.all([...listeners, ...linkListeners].map((l) => l.close()));
    forwarder?.close();
    await origin?.close();
    if (opts.gateway) await (await import("../transparent/gateway.js")).gatewayDown();
  };
  // Transparent and gateway modes' wildcard address ("::", or "0.0.0.0" without IPv6).
  const any = plan ? await anyAddress() : "0.0.0.0";
  try {
    if (gateway) await (await import("../transparent/gateway.js")).gatewayUp(plan!);
    // The default network on the documented port; every other network of the active
    // profiles on a port of its own (a client's network is the listener it uses).
    for (const net of networks) {
      const l = new DnsListener(resolver, { network: net, host, port: net === network ? portFor("dns", ports) : 0 });
      listeners.push(l);
      const port = await l.listen();
      if (net === network) endpoints.dns = { host, port };
      else ((endpoints.networks ??= {})[net] ??= {}).dns = { host, port };
    }
    // Explicit proxies: the username names the client's network, else the default network.
    const entryOpts = { network, networks: networkSet };
    const http = httpProxyServer(interceptor, upstream, entryOpts, proxyStats.http);
    servers.push(http);
    endpoints.httpProxy = { host, port: await listenTcp(http, host, portFor("httpProxy", ports), "HTTP proxy") };
    const socks = socksServer(interceptor, upstream, entryOpts, proxyStats.socks);
    servers.push(socks);
    endpoints.socks = { host, port: await listenTcp(socks, host, portFor("socks", ports), "SOCKS5 proxy") };
    if (plan) {
      // Each network's resolver also answers on the censor's end of that network's link, port
      // 53, where nft sends every client DNS query (any destination address).
      for (const l of links) {
        for (const addr of [l.censorV4, l.censorV6].filter((a): a is string => !!a)) {
          const dl = new DnsListener(resolver, { network: l.network, host: addr, port: 53 });
          linkListeners.push(dl);
          await dl.listen();
        }
      }
      const tp = transparentServer(interceptor, entryOpts, proxyStats.transparent, networkOfClient);
      servers.push(tp);
      const port = await listenTcp(tp, any, TPROXY_PORT, "transparent listener");
      (await import("../transparent/sockopt.js")).setTransparent(tp);
      endpoints.transparent = { host: any, port };
      // What the kernel blocks never reaches the interceptor: the hit sets report it.
      kernelRules = new (await import("../transparent/kernel-rules.js")).KernelRules(policy, clock, links, (h) => (!eventLog.wanted ? eventLog.count(h.rule.action.type, h.network) : eventLog.record({
        labTime: clock.now(), component: "interceptor", network: h.network, client: h.client,
        observation: { ip: h.ip }, action: h.rule.action.type, rule: h.rule.id, profile: h.rule.profile,
        ...(h.rule.seed ? { seed: h.rule.seed } : {}), detail: { enforcedBy: "kernel", stage: "packet" },
      })));
      await kernelRules.start();
    }
    // The messaging relay (its own port, and the world's chat endpoints through the interceptor).
    endpoints.relay = { host, port: await relayListener.listen(portFor("relay", ports)) };
    if (plan) {
      // Datagrams to the messaging services' UDP ports reach the relay by DNAT (topology.ts).
      for (const c of plan.chatUdp) await relayListener.listenChatUdp(any, c.relayPort, c.service as Service, networkOfClient);
    }
    upstream.relay = relayListener;
    endpoints.sms = { host, port: await smsGateway.listen(portFor("sms", ports)) };
    if (opts.control !== false) {
      const loopback = host === "127.0.0.1" || host === "::1" || host === "localhost";
      controlToken = opts.controlToken ?? (loopback ? undefined : randomBytes(16).toString("hex"));
      control = new ControlServer(() => labObject, controlToken);
      servers.push(control.server);
      endpoints.control = { host, port: await listenTcp(control.server, host, portFor("control", ports), "control API") };
    }
    // Helper processes share the UDP sockets (the lab's own process answers too).
    const helpers = (opts.dnsWorkers ?? 1) - 1;
    if (helpers > 0 && !forwarder) {
      const refs = (opts.profiles ?? []).map((r) => {
        if (typeof r !== "string") throw new Error("dnsWorkers needs profiles given by id or file, not built in code");
        return r;
      });
      workers = new ResolverWorkers(resolver, eventLog, clock);
      await workers.start(helpers, {
        refs, world: world.mode, confdir: pki.dir,
        ...(opts.country ? { country: opts.country, at: clock.startedAt } : {}),
        ...(opts.variant ? { variant: opts.variant } : {}),
        ...(opts.seedDirs ? { seedDirs: opts.seedDirs } : {}),
      });
      listeners.forEach((l, i) => {
        l.fastPathEnabled = false;
        if (l.udpSocket) workers!.share(l.udpSocket, networks[i]!);
      });
    }
  } catch (err) {
    await stopAll();
    eventLog.close();
    throw err;
  }

  let stopped = false;
  const signals = (): void => {
    void lab.stop().then(() => process.exit(0));
  };
  let active: Profile[] = [...profiles];
  /** A new set of profiles: a new policy for every part (each reads ctx.policy per decision). */
  const usePolicy = async (next: Profile[]): Promise<void> => {
    const compiled = compilePolicy(next, { labStart: clock.startedAt });
    ctx.policy = compiled;
    active = next;
    for (const n of next.flatMap((p) => p.networks)) {
      if (networkSet.has(n)) continue;
      networkSet.add(n);
      networks.push(n);
      const l = new DnsListener(resolver, { network: n, host, port: 0 });
      listeners.push(l);
      ((endpoints.networks ??= {})[n] ??= {}).dns = { host, port: await l.listen() };
    }
    kernelRules?.setPolicy(compiled);
    await kernelRules?.apply();
  };
  const lab: Lab = {
    endpoints,
    events: { [Symbol.asyncIterator]: () => eventLog[Symbol.asyncIterator]() },
    eventLog,
    clock,
    get policy() { return ctx.policy; },
    get profiles() { return active; },
    seeds,
    world,
    pki,
    resolver,
    interceptor,
    relay,
    smsGateway,
    proxyStats,
    ...(origin ? { origin } : {}),
    ...(workers ? { resolverWorkers: workers } : {}),
    network,
    status() {
      return {
        profiles: active.map((p) => ({
          id: p.id, title: p.title, ...(p.variant ? { variant: p.variant } : {}), variants: Object.keys(p.variants),
          period: { start: new Date(p.period.start).toISOString(), ...(p.period.end !== undefined ? { end: new Date(p.period.end).toISOString() } : {}) },
          timezone: p.timezone,
        })),
        labTime: new Date(clock.now()).toISOString(),
        clock: { mode: clock.mode, speed: clock.speed, paused: clock.paused },
        network, networks: [...networks],
        counters: eventLog.counters, total: eventLog.total,
        endpoints,
      };
    },
    seek(at) {
      const t = toInstant(at, "seek");
      if (t === undefined) throw new Error("seek needs an instant");
      clock.seek(t);
      interceptor.residual.clear();
    },
    async activate(ref, variant) {
      if (workers) throw new Error("profiles cannot change while DNS helper processes run (--dns-workers above 1): each holds its own policy");
      const { profiles: [p] } = selectProfiles({ refs: [ref], ...(variant !== undefined ? { variant } : {}), ...(opts.seedDirs ? { seedDirs: opts.seedDirs } : {}) });
      if (!p) throw new Error(`no profile "${ref}"`);
      const i = active.findIndex((x) => x.id === p.id);
      await usePolicy(i >= 0 ? active.map((x, k) => (k === i ? p : x)) : [...active, p]);
      eventLog.record({ labTime: clock.now(), component: "lab", action: "activate", profile: p.id, ...(p.variant ? { detail: { variant: p.variant } } : {}) });
      return p;
    },
    async deactivate(id) {
      if (workers) throw new Error("profiles cannot change while DNS helper processes run (--dns-workers above 1): each holds its own policy");
      if (!active.some((p) => p.id === id)) throw new Error(`profile "${id}" is not active (active: ${active.map((p) => p.id).join(", ") || "none"})`);
      await usePolicy(active.filter((p) => p.id !== id));
      eventLog.record({ labTime: clock.now(), component: "lab", action: "deactivate", profile: id });
    },
    reset() {
      const residual = interceptor.residual.size;
      interceptor.residual.clear();
      const held = relay.clearHeld();
      eventLog.resetCounters();
      return { residual, held };
    },
    decide(obs, o = {}) {
      const net = o.network ?? network;
      const labTime = clock.now();
      const verdict = ctx.policy.decide(obs, labTime, net);
      eventLog.record({
        labTime, component: o.component ?? "lab", network: net,
        ...(o.client ? { client: o.client } : {}),
        ...(o.flow ?? obs.flow ? { flow: o.flow ?? obs.flow } : {}),
        observation: { ...obs },
        action: verdict.action.type,
        ...(verdict.rule ? { rule: verdict.rule } : {}),
        ...(verdict.profile ? { profile: verdict.profile } : {}),
        ...(verdict.seed ? { seed: verdict.seed } : {}),
      });
      return verdict;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (opts.handleSignals) {
        process.off("SIGINT", signals);
        process.off("SIGTERM", signals);
      }
      await stopAll();
      eventLog.close();
    },
  };
  labObject = lab;
  if (opts.handleSignals) {
    process.on("SIGINT", signals);
    process.on("SIGTERM", signals);
  }
  return lab;
}

function newEntryStats(): EntryStats {
  return { connections: 0, badRequests: 0, authFailures: 0, headTimeouts: 0, refused: 0 };
}

/** "::" (both families) where this host has IPv6, else "0.0.0.0" (a kernel without IPv6). */
async function anyAddress(): Promise<string> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve("0.0.0.0"));
    probe.listen(0, "::", () => probe.close(() => resolve("::")));
  });
}
