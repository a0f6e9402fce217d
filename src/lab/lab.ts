// The lab: selects and loads profiles, starts the clock, the policy and the event log, and
// assembles the censoring parts as services (parts.ts) with one lifecycle: started in order,
// stopped in reverse, told of a new policy, a new network or a reset. Then it is the runtime
// controller (status, seek, activate, reset, decide). The control API attaches from above
// (api.ts); nothing here knows it.
import { randomBytes } from "node:crypto";
import { LabClock } from "../clock/clock.js";
import { EventLog } from "../events/log.js";
import type { Component, LabEvent } from "../events/types.js";
import { compilePolicy, type Policy } from "../policy/engine.js";
import type { Observation, Verdict } from "../policy/types.js";
import type { Profile } from "../profile/model.js";
import { selectProfiles, zoneFor } from "../profile/select.js";
import type { SeedCatalog } from "../seeds/catalog.js";
import { toInstant } from "../util/time.js";
import { normalizeName } from "../profile/lists.js";
import { Pki, defaultConfdir } from "../pki/pki.js";
import { buildWorld } from "../world/build.js";
import { OriginProcess } from "../world/origin-process.js";
import type { World } from "../world/world.js";
import type { LabContext } from "../runtime/context.js";
import { judge } from "../runtime/judge.js";
import { startAll, stopAll, type LabService } from "../runtime/service.js";
import { Resolver } from "../resolver/resolver.js";
import { Forwarder, systemResolvers } from "../resolver/forward.js";
import type { ResolverWorkers } from "../resolver/workers.js";
import { Interceptor } from "../interceptor/interceptor.js";
import { Upstream } from "../interceptor/upstream.js";
import type { EntryStats } from "../interceptor/entries.js";
import { Relay } from "../relay/relay.js";
import { RelayListener } from "../relay/listener.js";
import { SmsGateway } from "../relay/sms-gateway.js";
import { WORLD_NS, WORLD_PREFIXES, type Plan } from "../transparent/topology.js";
import { BOX_UPSTREAM_V4, chooseDatapath, residualSeconds } from "../transparent/onpath.js";
import { prefixMatcher } from "../policy/cidr.js";
import { EgressPolicy } from "../runtime/egress.js";
import { ConnectionBudget } from "../runtime/limits.js";
import { isLoopback } from "../util/address.js";
import type { Endpoints, LabOptions } from "./options.js";
import { anyAddress, gatewayPart, interceptorPart, onPathPart, originPart, proxiesPart, relayPart, resolverPart, smsPart, transparentPart, type Site } from "./parts.js";
import { DEFAULT_BOX } from "../profile/box-model.js";
import type { BoxDatapath } from "../box/datapath.js";

export { toInstant };

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
  /** Where allowed flows go, uncensored (the world's origin, a service, a real destination): the control vantage connects through it. */
  upstream: Upstream;
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
  /** Connections at once on the lab's TCP listeners, per listener and in all, and what was refused. */
  connections: ConnectionBudget;
  /** The explicit proxies' password (--world internet beyond loopback): username = network, this password. */
  proxyPassword?: string;
  /** The control API's token, when it is bound beyond loopback (set by the layer that attaches it: api.ts). */
  controlToken?: string;
  /** Runs `service` with the lab's lifecycle from now on (started here; stopped, reset and told of changes with the parts). */
  attach(service: LabService): Promise<void>;
  /** Asks the censor about an observation, as a component would, and records the decision. */
  decide(obs: Observation, opts?: { network?: string; component?: Component; client?: string; flow?: string }): Verdict;
  stop(): Promise<void>;
}

/** The on-path box's counters (BoxDatapath.stats): packets, copies, judgements, fail-opens, takeovers, injections. */
export type BoxStatus = BoxDatapath["stats"];

export interface LabStatus {
  /** Transparent and gateway modes: how the censor is crossed (proxy: TCP terminated; onpath: the box reads packets). */
  datapath?: "proxy" | "onpath";
  /** The on-path datapath: the box's counters. */
  box?: BoxStatus;
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



export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  // Instants without an offset are in the regime's time zone (one rule: profiles, CLI, API).
  const zone = zoneFor(opts.profiles ?? [], opts.country);
  const at = toInstant(opts.at, "at", zone);
  let from = toInstant(opts.from, "from", zone);
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
  const known = [...new Set(profiles.flatMap((p) => p.networks))];
  if (opts.network !== undefined && known.length && !known.includes(opts.network)) {
    throw new Error(`no network "${opts.network}" in the chosen profiles (networks: ${known.join(", ")})`);
  }
  const network = opts.network ?? profiles[0]?.networks[0] ?? "default";
  const own = userServices(opts, profiles);
  const world = buildWorld(profiles, { mode: opts.world ?? "lab", ...(own.length ? { hosts: Object.fromEntries(own.map((s) => [s.name, [s.address]])) } : {}) });
  const pki = new Pki(opts.confdir ?? defaultConfdir());
  // The CA clients are told to trust exists from the start, not from the first TLS flow.
  if (world.mode === "lab") pki.authority("lab");
  const networks = [network, ...new Set(profiles.flatMap((p) => p.networks).filter((n) => n !== network))];
  const host = opts.listen ?? "127.0.0.1";
  // Beyond loopback, a way out to the internet is never open to anyone who can reach the port.
  const proxyPassword = opts.proxyPassword ?? (world.mode === "internet" && !isLoopback(host) && host !== "localhost" ? randomBytes(12).toString("hex") : undefined);
  const plan = await planOf(opts, world, networks, profiles);
  const gateway = plan?.mode === "gateway";
  const events = new EventLog(opts.events, opts.eventsMaxBytes !== undefined ? { maxBytes: opts.eventsMaxBytes } : {});
  const ctx: LabContext = { policy, clock, world, pki, events };
  const site: Site = {
    ctx, host, budget: new ConnectionBudget(opts.maxConnections?.total, opts.maxConnections?.perListener), ...(proxyPassword ? { proxyPassword } : {}), ports: opts.ports ?? "auto", endpoints: {}, networks, networkSet: new Set(networks),
    ...(plan ? { plan } : {}), any: plan ? await anyAddress() : "0.0.0.0",
  };

  // The components.
  // The origin answers connections from a process of its own (two cores for serving and
  // intercepting); flows the interceptor allowed are handed to its in-lab instance.
  // A gateway on the path: the origin in this namespace terminates the clients' TCP (TPROXY) as the real server does.
  const originMode = !plan ? "loopback" : !gateway ? "world-namespace" : plan.datapath === "onpath" ? "gateway-onpath" : "loopback";
  const origin = world.mode === "lab"
    ? (originMode === "world-namespace" ? new OriginProcess(world, pki, { wrap: ["ip", "netns", "exec", WORLD_NS], transparent: true })
      : new OriginProcess(world, pki, { transparent: originMode === "gateway-onpath" }))
    : undefined;
  let forwarder: Forwarder | undefined;
  if (world.mode === "internet") {
    const upstreamDns = opts.upstream ?? systemResolvers()[0];
    if (!upstreamDns) throw new Error("--world internet needs an upstream resolver (none in /etc/resolv.conf; give --upstream ADDR)");
    forwarder = new Forwarder(upstreamDns);
  }
  const resolver = new Resolver(ctx, forwarder);
  const relay = new Relay(ctx, { networks, defaultNetwork: network });
  const relayListener = new RelayListener(relay, site.host);
  const smsGateway = new SmsGateway(relay, site.host);
  const egress = new EgressPolicy({
    ...(opts.allowUpstream ? { allow: opts.allowUpstream } : {}),
    own: () => Object.values(site.endpoints).filter((e): e is { host: string; port: number } => typeof e === "object" && e !== null && "port" in e),
    ...(plan ? { ownAddresses: new Set([...plan.links.flatMap((l) => [l.censorV4, l.censorV6]), plan.world?.censorV4, plan.world?.censorV6].filter((a): a is string => !!a)) } : {}),
  });
  // The box (on-path datapath), once its part has started: connections for its clients' flows come from their addresses.
  let theBox: () => BoxDatapath | undefined = () => undefined;
  const upstream = new Upstream({
    world, egress,
    ...(own.length ? { services: new Map(own.map((s) => [`${s.address}|${s.port}`, { host: s.host, port: s.port }])) } : {}),
    ...(origin ? { origin: { address: () => origin.address, sink: origin, secret: origin.secret } } : {}),
    ...(forwarder ? { lookup: (name: string) => forwarder!.lookup(name) } : {}),
    chat: relayListener,
    ...(plan ? {
      routed: {
        servedByOrigin: prefixMatcher([...WORLD_PREFIXES, ...plan.pins]),
        // Gateway mode: the world is served here (its origin on loopback); the censor connects
        // for real only to the service subnets it was given, never to the outside.
        ...(gateway ? { originOnLoopback: true, reachable: prefixMatcher(plan.services ?? []) } : {}),
        // On the path (namespaces): a client's flow is fetched from the client's own address
        // (the box's datapath routes the answers to it), anything else from the box's address.
        ...(plan.datapath === "onpath" && !gateway ? { source: (client: { ip: string }, dst: { ip: string; port: number }) => theBox()?.upstreamFrom(client.ip, dst) ?? { localAddress: BOX_UPSTREAM_V4 } } : {}),
      },
    } : {}),
  });
  const interceptor = new Interceptor(ctx, upstream);
  const proxyStats = { http: newEntryStats(), socks: newEntryStats(), transparent: newEntryStats() };

  // The parts, in start order (stopped in reverse).
  const resolverService = resolverPart(site, resolver, {
    ...(forwarder ? { forwarder } : {}),
    ...(opts.dnsWorkers !== undefined ? { dnsWorkers: opts.dnsWorkers } : {}),
    workerInit: () => ({
      refs: (opts.profiles ?? []).map((r) => {
        if (typeof r !== "string") throw new Error("dnsWorkers needs profiles given by id or file, not built in code");
        return r;
      }),
      world: world.mode, confdir: pki.dir,
      ...(opts.country ? { country: opts.country, at: clock.startedAt } : {}),
      ...(opts.variant ? { variant: opts.variant } : {}),
      ...(opts.seedDirs ? { seedDirs: opts.seedDirs } : {}),
    }),
  });
  // The on-path datapath's box (transparent mode): its counters are part of the status.
  const boxPart = plan?.datapath === "onpath" ? onPathPart(site, profiles.find((p) => p.dpi.box)?.dpi.box ?? DEFAULT_BOX, interceptor) : undefined;
  theBox = () => boxPart?.datapath();
  const services: LabService[] = [
    ...(gateway ? [gatewayPart(plan!)] : []),
    ...(origin ? [originPart(site, origin, originMode)] : []),
    resolverService,
    interceptorPart(interceptor),
    proxiesPart(site, interceptor, upstream, proxyStats),
    ...(plan ? [boxPart ?? transparentPart(site, interceptor, proxyStats.transparent)] : []),
    relayPart(site, relay, relayListener),
    smsPart(site, smsGateway),
  ];
  try {
    await startAll(services);
  } catch (err) {
    events.close();
    throw err;
  }
  return controller({ opts, ctx, site, services, profiles, seeds, network, world, pki, resolver, interceptor, upstream, relay, smsGateway, proxyStats, origin, workers: () => resolverService.workers(), box: () => boxPart?.datapath()?.stats });
}

/** Where the user's own servers sit in the lab world: 198.18.125.10 and up (outside the ranges transparent mode uses). */
export const SERVICE_ADDRESS_BASE = "198.18.125.";

function userServices(opts: LabOptions, profiles: Profile[]): { name: string; host: string; port: number; address: string }[] {
  const list = opts.services ?? [];
  if (!list.length) return [];
  if (opts.transparent || opts.gateway) throw new Error("--service is for explicit mode; in transparent mode start your server in the world namespace (198.18.126.0/24), in gateway mode give its subnet with --services");
  if (list.length > 200) throw new Error(`at most 200 services (got ${list.length})`);
  const seen = new Set<string>();
  return list.map((s, i) => {
    const name = normalizeName(s.name);
    if (!name) throw new Error(`--service ${s.name}=...: not a name`);
    if (seen.has(name)) throw new Error(`--service ${name} is given twice`);
    seen.add(name);
    if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) throw new Error(`--service ${name}: bad port ${s.port}`);
    if (profiles.some((p) => Object.keys(p.world.hosts).includes(name))) throw new Error(`--service ${name}: the profile pins that name already; choose another`);
    return { name, host: s.host, port: s.port, address: `${SERVICE_ADDRESS_BASE}${10 + i}` };
  });
}

/** Transparent (namespace) mode's plan as given, or gateway mode's, made here from this host's interfaces. */
async function planOf(opts: LabOptions, world: World, networks: string[], profiles: Profile[]): Promise<Plan | undefined> {
  if (!opts.gateway) return opts.transparent?.plan;
  if (world.mode !== "lab") throw new Error("gateway mode serves the lab world only (--world lab): it must never be a way out for its clients");
  const { gatewayPlan } = await import("../transparent/gateway.js");
  // As in transparent mode: on the path where the profile's record describes its box on the wire.
  const box = profiles.find((p) => p.dpi.box)?.dpi.box;
  const datapath = await chooseDatapath(opts.gateway.datapath, !!box);
  return gatewayPlan({
    ...(datapath === "onpath" ? { onPath: { hops: (box ?? DEFAULT_BOX).hops, residualSeconds: residualSeconds(profiles) } } : {}),
    clients: opts.gateway.clients, networks, services: opts.gateway.services ?? [], pins: Object.values(world.spec.data.hosts).flat(),
    chatUdp: Object.entries(world.spec.data.services ?? {}).map(([service, spec]) => ({ service, ports: spec.chat?.udp ?? [] })),
  });
}

interface Assembly {
  opts: LabOptions; ctx: LabContext; site: Site; services: LabService[]; profiles: Profile[]; seeds: SeedCatalog; network: string;
  world: World; pki: Pki; resolver: Resolver; interceptor: Interceptor; upstream: Upstream; relay: Relay; smsGateway: SmsGateway;
  proxyStats: { http: EntryStats; socks: EntryStats; transparent: EntryStats }; origin: OriginProcess | undefined;
  workers: () => ResolverWorkers | undefined;
  /** The on-path box's counters (transparent mode on the on-path datapath). */
  box: () => BoxStatus | undefined;
}

/** The running lab: what the library API, the CLI and the control API steer. */
function controller(a: Assembly): Lab {
  const { opts, ctx, site, services, network, interceptor } = a;
  const { clock, events } = ctx;
  let stopped = false;
  let active: Profile[] = [...a.profiles];
  const signals = (): void => {
    void lab.stop().then(() => process.exit(0));
  };
  const noWorkers = (): void => {
    if (a.workers()) throw new Error("profiles cannot change while DNS helper processes run (--dns-workers above 1): each holds its own policy");
  };
  /** A new set of profiles: a new policy for every part (each reads ctx.policy per decision). */
  const usePolicy = async (next: Profile[]): Promise<void> => {
    const compiled = compilePolicy(next, { labStart: clock.startedAt });
    ctx.policy = compiled;
    active = next;
    for (const n of next.flatMap((p) => p.networks)) {
      if (site.networkSet.has(n)) continue;
      site.networkSet.add(n);
      site.networks.push(n);
      for (const s of services) await s.networkAdded?.(n);
    }
    for (const s of services) await s.policyChanged?.(compiled);
  };
  const lab: Lab = {
    endpoints: site.endpoints,
    events: { [Symbol.asyncIterator]: () => events[Symbol.asyncIterator]() },
    eventLog: events,
    clock,
    get policy() { return ctx.policy; },
    get profiles() { return active; },
    seeds: a.seeds,
    world: a.world,
    pki: a.pki,
    resolver: a.resolver,
    interceptor,
    upstream: a.upstream,
    relay: a.relay,
    smsGateway: a.smsGateway,
    proxyStats: a.proxyStats,
    ...(a.origin ? { origin: a.origin } : {}),
    get resolverWorkers() { return a.workers(); },
    network,
    connections: site.budget,
    ...(site.proxyPassword ? { proxyPassword: site.proxyPassword } : {}),
    status() {
      return {
        profiles: active.map((p) => ({
          id: p.id, title: p.title, ...(p.variant ? { variant: p.variant } : {}), variants: Object.keys(p.variants),
          period: { start: new Date(p.period.start).toISOString(), ...(p.period.end !== undefined ? { end: new Date(p.period.end).toISOString() } : {}) },
          timezone: p.timezone,
        })),
        labTime: new Date(clock.now()).toISOString(),
        clock: { mode: clock.mode, speed: clock.speed, paused: clock.paused },
        network, networks: [...site.networks],
        counters: events.counters, total: events.total,
        endpoints: site.endpoints,
        ...(site.plan ? { datapath: site.plan.datapath ?? "proxy" } : {}),
        ...(a.box() ? { box: a.box()! } : {}),
      };
    },
    seek(at) {
      const t = toInstant(at, "seek", active[0]?.timezone ?? "UTC");
      if (t === undefined) throw new Error("seek needs an instant");
      clock.seek(t);
      interceptor.residual.clear();
    },
    async activate(ref, variant) {
      noWorkers();
      const { profiles: [p] } = selectProfiles({ refs: [ref], ...(variant !== undefined ? { variant } : {}), ...(opts.seedDirs ? { seedDirs: opts.seedDirs } : {}) });
      if (!p) throw new Error(`no profile "${ref}"`);
      const i = active.findIndex((x) => x.id === p.id);
      await usePolicy(i >= 0 ? active.map((x, k) => (k === i ? p : x)) : [...active, p]);
      events.record({ labTime: clock.now(), component: "lab", action: "activate", profile: p.id, ...(p.variant ? { detail: { variant: p.variant } } : {}) });
      return p;
    },
    async deactivate(id) {
      noWorkers();
      if (!active.some((p) => p.id === id)) throw new Error(`profile "${id}" is not active (active: ${active.map((p) => p.id).join(", ") || "none"})`);
      await usePolicy(active.filter((p) => p.id !== id));
      events.record({ labTime: clock.now(), component: "lab", action: "deactivate", profile: id });
    },
    reset() {
      const cleared: Record<string, number> = {};
      for (const s of services) Object.assign(cleared, s.reset?.());
      events.resetCounters();
      return { residual: cleared.residual ?? 0, held: cleared.held ?? 0 };
    },
    decide(obs, o = {}) {
      // The library's way to ask: recorded whether or not anyone reads events (the caller asked).
      const net = o.network ?? network;
      const labTime = clock.now();
      const verdict = judge(ctx, obs, net);
      events.record({
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
    async attach(service) {
      await service.start();
      services.push(service);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (opts.handleSignals) {
        process.off("SIGINT", signals);
        process.off("SIGTERM", signals);
      }
      await stopAll(services);
      events.close();
    },
  };
  if (opts.handleSignals) {
    process.on("SIGINT", signals);
    process.on("SIGTERM", signals);
    // Started by a wrapper (npx's `sh -c`) that was killed: the lab notices it is orphaned and stops.
    const parent = process.ppid;
    const watch = setInterval(() => { if (process.ppid !== parent) { clearInterval(watch); signals(); } }, 1000);
    watch.unref();
  }
  return lab;
}

function newEntryStats(): EntryStats {
  return { connections: 0, badRequests: 0, authFailures: 0, headTimeouts: 0, refused: 0 };
}
