// Where a flow goes once the censor lets it through, as named routes:
//   origin   the lab world's origin serves the address: an allowed flow is adopted in-process
//            (the interceptor leaves the data path); a flow the lab keeps (throttle, MITM,
//            per-request) connects to it, over loopback with a PROXY line naming the original
//            destination, or (namespace mode) for real, through the world link;
//   direct   a real connection to the destination (--world internet; the service subnets of
//            gateway mode; addresses of the world namespace that the origin does not serve);
//   refused  never: the lab's own host or listeners, or, in gateway mode, anything that is
//            neither the lab world nor a service subnet.
// A messaging service's chat endpoint is a fourth way: its flows go to the relay (chatOf).
import { connect, type Socket } from "node:net";
import { Agent } from "node:http";
import { Lru } from "../util/lru.js";
import type { World } from "../world/world.js";
import { formatProxyHeader } from "../world/proxy-header.js";
import type { ChatSink, FlowEnds, FlowSink } from "../runtime/flows.js";
import type { EgressPolicy } from "../runtime/egress.js";
import { canonicalAddress, unmap } from "../util/address.js";

export interface Destination {
  /** The name the client asked for (explicit proxies), if any. */
  host?: string;
  ip: string;
  port: number;
}

export type Route =
  | { name: "origin"; via: "loopback" | "routed" }
  | { name: "service"; host: string; port: number }
  | { name: "direct" }
  | { name: "refused"; why: string };

/** The upstream refused a destination: the lab itself (loop guard) or, in gateway mode, outside the lab. */
export class LoopError extends Error {}

export interface UpstreamOptions {
  world: World;
  /** The world's origin (lab world): its loopback address, and the sink that adopts allowed flows in-process. */
  origin?: { address: () => { host: string; port: number }; sink: FlowSink; secret?: string };
  /** The relay, for flows to the world's messaging chat endpoints (lab world). */
  chat?: ChatSink;
  /** The user's own servers in the lab world (--service): "lab address|port" -> where they really are. */
  services?: ReadonlyMap<string, { host: string; port: number }>;
  /** Which destinations a real connection may go to (runtime/egress.ts). */
  egress: EgressPolicy;
  /** --world internet: names resolve through the real upstream resolver (not the lab world's addresses). */
  lookup?: (name: string) => Promise<string | undefined>;
  /**
   * Namespace mode: the censor's own addresses, and which addresses the world's origin serves
   * (the rest of the world namespace is connected to for real).
   * Gateway mode adds `originOnLoopback` (the origin runs here) and `reachable` (the service subnets).
   */
  routed?: {
    servedByOrigin: (ip: string) => boolean;
    originOnLoopback?: boolean;
    reachable?: (ip: string) => boolean;
    /**
     * The source of a real connection made for a client's flow (the on-path box: from the
     * client's own address, as the 2019 Qaznet box fetched certificates, or its own address in
     * the clients' prefix); `release` when the connection closes.
     */
    source?: (client: { ip: string; port: number }, dst: Destination) => { localAddress: string; localPort?: number; release?: () => void };
  };
}

export class Upstream {
  constructor(private readonly o: UpstreamOptions) {}

  /** The route of a destination (see the top of this file). */
  route(dst: Destination): Route {
    const { world, routed } = this.o;
    const service = this.o.services?.get(`${dst.ip}|${dst.port}`);
    if (service) return { name: "service", ...service };
    if (world.mode === "lab") {
      if (!routed) return { name: "origin", via: "loopback" };
      if (routed.servedByOrigin(dst.ip)) return { name: "origin", via: routed.originOnLoopback ? "loopback" : "routed" };
    }
    const why = this.guard(dst);
    return why ? { name: "refused", why } : { name: "direct" };
  }

  /** Why the lab must never connect to `dst` (the egress policy; outside a gateway's reach), or undefined. */
  private guard(dst: Destination): string | undefined {
    const why = this.o.egress.check(dst.ip, dst.port);
    if (why) return why;
    if (this.o.routed?.reachable && !this.o.routed.reachable(dst.ip)) {
      return `refusing to connect to ${dst.ip}:${dst.port}: neither the lab world nor a service subnet (gateway mode)`;
    }
    return undefined;
  }

  /** The origin (and a user's own server) is there: a flow to it connects only once it is allowed. */
  lazyFor(dst: Destination): boolean {
    const r = this.route(dst).name;
    return r === "origin" || r === "service";
  }

  /** Hands an allowed flow to the origin in-process (the interceptor leaves the data path); false when it is not the origin's. */
  handOver(socket: Socket, ends: FlowEnds, first: Buffer): boolean {
    if (!this.o.origin || this.route(ends.dst).name !== "origin") return false;
    return this.o.origin.sink.adopt(socket, ends, first);
  }

  /** The messaging service whose chat endpoint `dst` is (lab world), if any. */
  chatOf(dst: Destination): string | undefined {
    if (this.o.world.mode !== "lab" || !this.o.chat) return undefined;
    return this.o.world.chatEndpoint(dst, dst.port, "tcp");
  }

  /** Hands a chat flow to the relay. */
  toRelay(socket: Socket, network: string, service: string, first: Buffer): void {
    this.o.chat!.adoptChat(socket, network, service, first);
  }

  /** The messaging service a destination belongs to, if any (world data). */
  serviceOf(dst: Destination): string | undefined {
    return this.o.world.serviceOf(dst);
  }

  /**
   * The address a destination stands for, in canonical form (for IP rules, the guard and the
   * PROXY line): an address as given; a name as the lab world has it, or, with --world
   * internet, as the real upstream resolver answers. Undefined: no such name.
   */
  async resolve(host: string): Promise<string | undefined> {
    const literal = canonicalAddress(host);
    if (literal) return literal;
    if (this.o.lookup) return this.o.lookup(host);
    if (!this.o.world.exists(host)) return undefined;
    const a = this.o.world.addresses(host);
    return a.v4[0] ?? a.v6[0];
  }

  /** The base URL per-request forwarding sends a destination's HTTP requests to. */
  httpTarget(dst: Destination): string {
    const r = this.route(dst);
    if (r.name === "refused") throw new LoopError(r.why);
    if (r.name === "origin" && r.via === "loopback") {
      const a = this.originAddress();
      return `http://${a.host}:${a.port}`;
    }
    if (r.name === "service") return `http://${r.host.includes(":") ? `[${r.host}]` : r.host}:${r.port}`;
    return `http://${dst.ip.includes(":") ? `[${dst.ip}]` : dst.ip}:${dst.port}`;
  }

  private readonly agents = new Lru<string, Agent>(64);

  /**
   * The HTTP agent per-request forwarding uses for `dst`: for the origin on loopback, its
   * connections open with the PROXY line (and the lab's secret); elsewhere, none (the default).
   */
  httpAgent(dst: Destination): Agent | undefined {
    const r = this.route(dst);
    if (r.name !== "origin" || r.via !== "loopback") return undefined;
    const key = `${dst.ip}|${dst.port}`;
    let agent = this.agents.get(key);
    if (!agent) {
      agent = new Agent({ keepAlive: true, maxSockets: 64 });
      // Every connection of this agent starts with the PROXY line naming this destination.
      (agent as unknown as { createConnection: () => Socket }).createConnection = () => this.connect(dst, { ip: "127.0.0.1", port: 0 });
      this.agents.set(key, agent);
    }
    return agent;
  }

  private originAddress(): { host: string; port: number } {
    if (!this.o.origin) throw new Error("the lab world has no origin server");
    return this.o.origin.address();
  }

  /** A connection for a flow the lab stays in (throttled, intercepted, per-request, server-direction DPI). */
  connect(dst: Destination, client: { ip: string; port: number }): Socket {
    const r = this.route(dst);
    if (r.name === "refused") throw new LoopError(r.why);
    if (r.name === "origin" && r.via === "loopback") {
      const a = this.originAddress();
      const s = connect(a.port, a.host);
      s.setNoDelay(true);
      s.write(formatProxyHeader({ src: unmap(client.ip), dst: dst.ip, srcPort: client.port, dstPort: dst.port }, this.o.origin?.secret));
      return s;
    }
    // A user's own server: declared by the user, so it may be on loopback (the egress policy is for what clients choose).
    const from = r.name === "service" ? undefined : this.o.routed?.source?.(client, dst);
    const s = r.name === "service" ? connect(r.port, r.host) : connect({ port: dst.port, host: dst.ip, ...(from ? { localAddress: from.localAddress, ...(from.localPort ? { localPort: from.localPort } : {}) } : {}) });
    if (from?.release) s.once("close", from.release);
    s.setNoDelay(true);
    return s;
  }
}
