// The lab's parts as services (runtime/service.ts): each a small adapter from a component to
// the lab's lifecycle. lab.ts lists them in start order; adding a component is one folder and
// one line there.
import type { Server } from "node:net";
import { randomBytes } from "node:crypto";
import type { LabContext } from "../runtime/context.js";
import type { LabService } from "../runtime/service.js";
import type { FlowCarrier } from "../runtime/flows.js";
import { account } from "../runtime/judge.js";
import type { ConnectionBudget } from "../runtime/limits.js";
import { listenTcp, portFor } from "../runtime/listen.js";
import type { Endpoints } from "./options.js";
import { DnsListener } from "../resolver/listeners.js";
import type { Resolver } from "../resolver/resolver.js";
import type { Forwarder } from "../resolver/forward.js";
import { ResolverWorkers } from "../resolver/workers.js";
import type { Interceptor } from "../interceptor/interceptor.js";
import type { Upstream } from "../interceptor/upstream.js";
import { destroyConnections, httpProxyServer, socksServer, transparentServer, type EntryStats } from "../interceptor/entries.js";
import type { Relay } from "../relay/relay.js";
import type { RelayListener } from "../relay/listener.js";
import type { SmsGateway } from "../relay/sms-gateway.js";
import type { Service } from "../relay/protocol.js";
import type { OriginProcess } from "../world/origin-process.js";
import { ORIGIN_PORT, TPROXY_PORT, type Link, type Plan } from "../transparent/topology.js";
import type { KernelRules } from "../transparent/kernel-rules.js";
import { prefixMatcher } from "../policy/cidr.js";
import { BoxDatapath } from "../box/datapath.js";
import type { BoxModel } from "../profile/box-model.js";
import { BOX_UPSTREAM_V4, QUEUE_RULE, QUEUE_RULE_OUTPUT, boxDnsAddress } from "../transparent/onpath.js";

/** What the parts share besides the context: where they listen, and the lab's networks. */
export interface Site {
  ctx: LabContext;
  host: string;
  /** The proxies' password (--world internet beyond loopback): clients must send it, with their network as the username. */
  proxyPassword?: string;
  ports: "auto" | "default" | number;
  endpoints: Endpoints;
  /** The default network first; grows when a profile activated at run time brings one. */
  networks: string[];
  /** The same, as a set (the proxies and the relay check names against it). */
  networkSet: Set<string>;
  /** Connections at once, per listener and in all (runtime/limits.ts). */
  budget: ConnectionBudget;
  /** Transparent and gateway modes' plan, and their wildcard address ("::" or "0.0.0.0"). */
  plan?: Plan;
  any: string;
}

/** The wildcard address of this host: "::" where it has IPv6, else "0.0.0.0". */
export async function anyAddress(): Promise<string> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve("0.0.0.0"));
    probe.listen(0, "::", () => probe.close(() => resolve("::")));
  });
}

const closeServer = (srv: Server): Promise<void> => new Promise<void>((r) => { srv.close(() => r()); destroyConnections(srv); });

/** Gateway mode: this namespace's routing rule and nft table (first up, last down). */
export function gatewayPart(plan: Plan): LabService {
  return {
    name: "gateway",
    start: async () => (await import("../transparent/gateway.js")).gatewayUp(plan),
    stop: async () => (await import("../transparent/gateway.js")).gatewayDown(),
  };
}

/** The world's origin: a process of its own, and an in-lab instance for flows handed over. */
export function originPart(site: Site, origin: OriginProcess, mode: "loopback" | "world-namespace" | "gateway-onpath"): LabService {
  // The supervisor's findings are part of the record: a flow that failed meanwhile is explained.
  origin.onHealth = (what, detail) => site.ctx.events.record({ labTime: site.ctx.clock.now(), component: "lab", action: `origin-${what}`, detail });
  return {
    name: "origin",
    // Namespace mode: in the world namespace, behind TPROXY (the censor routes allowed flows there for real).
    // A gateway on the path: behind TPROXY too, on loopback (no client reaches it but through the box).
    start: () => (mode === "world-namespace" ? origin.listen("::", ORIGIN_PORT) : mode === "gateway-onpath" ? origin.listen("127.0.0.1", ORIGIN_PORT) : origin.listen("127.0.0.1", 0)),
    stop: () => origin.close(),
  };
}

/**
 * The resolver: one listener per network (the default network on the documented port, the
 * others on ports of their own), those on the links in transparent mode, and helper processes.
 */
export function resolverPart(site: Site, resolver: Resolver, o: { forwarder?: Forwarder; dnsWorkers?: number; workerInit: () => Omit<import("../resolver/worker.js").WorkerInit, "type" | "clock" | "wanted"> }): LabService & { workers(): ResolverWorkers | undefined } {
  const listeners: DnsListener[] = [];
  /** Transparent mode's resolvers on the link addresses (kept apart: workers map `listeners` to networks by index). */
  const linkListeners: DnsListener[] = [];
  let workers: ResolverWorkers | undefined;
  const network = site.networks[0]!;
  const add = async (net: string, port: number): Promise<void> => {
    const l = new DnsListener(resolver, { network: net, host: site.host, port });
    listeners.push(l);
    const p = await l.listen();
    if (l.tcpServer) site.budget.guard(l.tcpServer, `dns ${net}`);
    if (net === network) site.endpoints.dns = { host: site.host, port: p };
    else ((site.endpoints.networks ??= {})[net] ??= {}).dns = { host: site.host, port: p };
  };
  return {
    name: "resolver",
    workers: () => workers,
    async start() {
      // --ports BASE: the other networks' resolvers follow the documented parts (BASE+6, BASE+7, ...).
      for (const [i, net] of site.networks.entries()) await add(net, net === network ? portFor("dns", site.ports) : typeof site.ports === "number" ? site.ports + 5 + i : 0);
      // Each network's resolver also answers on the censor's end of its link, port 53, where
      // nft sends every client DNS query (any destination address). On the on-path datapath
      // the links end at the first router: the box has an address per network instead.
      const onPath = site.plan?.datapath === "onpath";
      for (const [i, l] of (site.plan?.links ?? []).entries()) {
        for (const addr of onPath && site.plan?.mode !== "gateway" ? [boxDnsAddress(i)] : [l.censorV4, l.censorV6].filter((a): a is string => !!a)) {
          const dl = new DnsListener(resolver, { network: l.network, host: addr, port: 53 });
          linkListeners.push(dl);
          await dl.listen();
        }
      }
      // Helper processes share the UDP sockets (the lab's own process answers too).
      const helpers = (o.dnsWorkers ?? 1) - 1;
      if (helpers > 0 && !o.forwarder) {
        workers = new ResolverWorkers(resolver, site.ctx.events, site.ctx.clock);
        workers.onHealth = (what, detail) => site.ctx.events.record({ labTime: site.ctx.clock.now(), component: "lab", action: `resolver-helper-${what}`, detail });
        await workers.start(helpers, o.workerInit());
        listeners.forEach((l, i) => {
          l.fastPathEnabled = false;
          if (l.udpSocket) workers!.share(l.udpSocket, site.networks[i]!);
        });
      }
    },
    networkAdded: (net) => add(net, 0),
    async stop() {
      await workers?.stop();
      await Promise.all([...listeners, ...linkListeners].map((l) => l.close()));
      o.forwarder?.close();
    },
  };
}

/** The interceptor's run-time state (the residual table). */
export function interceptorPart(interceptor: Interceptor): LabService {
  return {
    name: "interceptor",
    start: async () => undefined,
    reset: () => {
      const residual = interceptor.residual.size;
      interceptor.residual.clear();
      return { residual };
    },
    stop: async () => undefined,
  };
}

/** The explicit entries: an HTTP proxy and a SOCKS5 proxy (the username names the network). */
export function proxiesPart(site: Site, interceptor: Interceptor, upstream: Upstream, stats: { http: EntryStats; socks: EntryStats }): LabService {
  const servers: Server[] = [];
  return {
    name: "proxies",
    async start() {
      const entryOpts = { network: site.networks[0]!, networks: site.networkSet, ...(site.proxyPassword ? { password: site.proxyPassword } : {}) };
      const http = httpProxyServer(interceptor, upstream, entryOpts, stats.http);
      site.budget.guard(http, "httpProxy");
      servers.push(http);
      site.endpoints.httpProxy = { host: site.host, port: await listenTcp(http, site.host, portFor("httpProxy", site.ports), "HTTP proxy") };
      const socks = socksServer(interceptor, upstream, entryOpts, stats.socks);
      site.budget.guard(socks, "socks");
      servers.push(socks);
      site.endpoints.socks = { host: site.host, port: await listenTcp(socks, site.host, portFor("socks", site.ports), "SOCKS5 proxy") };
    },
    stop: async () => { await Promise.all(servers.map(closeServer)); },
  };
}

/** Transparent and gateway modes: the TPROXY listener (a client's address names its network) and the kernel rules. */
export function transparentPart(site: Site, interceptor: Interceptor, stats: EntryStats): LabService {
  const plan = site.plan!;
  const links: Link[] = plan.links;
  let server: Server | undefined;
  let kernel: KernelRules | undefined;
  return {
    name: "transparent",
    async start() {
      const networkOf = networkOfClient(links);
      server = transparentServer(interceptor, { network: site.networks[0]!, networks: site.networkSet }, stats, networkOf);
      site.budget.guard(server, "transparent");
      const port = await listenTcp(server, site.any, TPROXY_PORT, "transparent listener");
      (await import("../util/sockopt.js")).setTransparent(server);
      site.endpoints.transparent = { host: site.any, port };
      // What the kernel blocks never reaches the interceptor: the hit sets report it.
      kernel = await kernelRules(site, "interceptor");
    },
    async policyChanged(policy) {
      kernel?.setPolicy(policy);
      await kernel?.apply();
    },
    async stop() {
      kernel?.stop();
      if (server) await closeServer(server);
    },
  };
}

/**
 * The on-path datapath: the box judges the first packets of each flow in the kernel's path
 * (box/datapath.ts), and the kernel rules as in transparent mode. Flows it takes over (block
 * pages, alerts, MITM, throttling) are carried out by `carrier` (the interceptor).
 */
export function onPathPart(site: Site, model: BoxModel, carrier: FlowCarrier): LabService & { datapath(): BoxDatapath | undefined } {
  const links = site.plan!.links;
  let kernel: KernelRules | undefined;
  let box: BoxDatapath | undefined;
  return {
    name: "box",
    datapath: () => box,
    async start() {
      const { ctx } = site;
      // A gateway has no routers: the box sees the client's TTL undecremented, and its servers
      // answer from this namespace (their packets are queued on output too).
      const gateway = site.plan!.mode === "gateway";
      box = new BoxDatapath(ctx, {
        model, networkOf: networkOfClient(links), carrier,
        queueRules: gateway ? [QUEUE_RULE, QUEUE_RULE_OUTPUT] : [QUEUE_RULE],
        ...(gateway ? { hopsToServer: model.hops.client + model.hops.server + 1, localServers: true } : { upstreamAddress: BOX_UPSTREAM_V4 }),
      });
      await box.start();
      kernel = await kernelRules(site, "box");
    },
    async policyChanged(policy) {
      kernel?.setPolicy(policy);
      await kernel?.apply();
    },
    reset: () => { box?.clearResidual(); return {}; },
    async stop() {
      kernel?.stop();
      await box?.stop();
    },
  };
}

/** The kernel rules of transparent modes, started; their hits recorded as events of `component`. */
async function kernelRules(site: Site, component: "interceptor" | "box"): Promise<KernelRules> {
  const { ctx } = site;
  const k = new (await import("../transparent/kernel-rules.js")).KernelRules(ctx.policy, ctx.clock, site.plan!.links, (h) => account(
    ctx.events, { action: h.rule.action, rule: h.rule.id, profile: h.rule.profile, ...(h.rule.seed ? { seed: h.rule.seed } : {}) }, h.network, ctx.clock.now(),
    () => ({ component, client: h.client, observation: { ip: h.ip }, detail: { enforcedBy: "kernel", stage: "packet" } }),
  ));
  await k.start();
  return k;
}

/** Transparent and gateway modes: a client's address (or subnet) names its network. */
export function networkOfClient(links: Link[]): (ip: string) => string | undefined {
  const byAddress = new Map(links.flatMap((l) => [l.clientV4, l.clientV6].filter((a): a is string => !!a).map((a) => [a, l.network] as [string, string])));
  const bySubnet = links.filter((l) => l.clientPrefix).map((l) => ({ network: l.network, has: prefixMatcher([l.clientPrefix!]) }));
  return (ip) => byAddress.get(ip) ?? bySubnet.find((s) => s.has(ip))?.network;
}

/** The messaging relay: its own port, and (transparent modes) the services' UDP, by DNAT. */
export function relayPart(site: Site, relay: Relay, listener: RelayListener): LabService {
  return {
    name: "relay",
    async start() {
      site.endpoints.relay = { host: site.host, port: await listener.listen(portFor("relay", site.ports)) };
      if (listener.server) site.budget.guard(listener.server, "relay");
      for (const c of site.plan?.chatUdp ?? []) await listener.listenChatUdp(site.any, c.relayPort, c.service as Service, networkOfClient(site.plan!.links));
    },
    reset: () => ({ held: relay.clearHeld() }),
    async stop() {
      relay.stop();
      await listener.close();
    },
  };
}

/** The operators' SMS centres (Kannel-style HTTP). */
export function smsPart(site: Site, sms: SmsGateway): LabService {
  return {
    name: "sms",
    start: async () => {
      site.budget.guard(sms.server, "sms");
      site.endpoints.sms = { host: site.host, port: await sms.listen(portFor("sms", site.ports)) };
    },
    stop: () => sms.close(),
  };
}

/** A control token for listeners beyond loopback (made up when none is given). */
export function controlTokenFor(host: string, given: string | undefined): string | undefined {
  const loopback = host === "127.0.0.1" || host === "::1" || host === "localhost";
  return given ?? (loopback ? undefined : randomBytes(16).toString("hex"));
}
