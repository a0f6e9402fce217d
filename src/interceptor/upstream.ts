// Where an allowed flow goes: in the lab world, the world's origin (with a PROXY line naming
// the original destination); with --world internet, the real address. Never the lab itself.
import { connect, isIP, type Socket } from "node:net";
import type { World } from "../world/world.js";
import { formatProxyHeader } from "../world/proxy-header.js";
import type { OriginProcess } from "../world/origin-process.js";
import type { RelayListener } from "../relay/listener.js";
import type { Service } from "../relay/protocol.js";

export interface Destination {
  /** The name the client asked for (explicit proxies), if any. */
  host?: string;
  ip: string;
  port: number;
}

/** The upstream refused a destination: the lab itself (loop guard) or, in gateway mode, outside the lab. */
export class LoopError extends Error {}

export class Upstream {
  /** The lab's relay, for flows to the world's messaging endpoints (set once it listens). */
  relay: RelayListener | undefined;

  constructor(
    private readonly world: World,
    private readonly origin: { host: string; port: number } | undefined,
    private readonly originProcess: OriginProcess | undefined,
    private readonly own: () => { host: string; port: number }[],
    /**
     * Transparent mode: allowed flows to addresses the world's origin serves are handed to it
     * (as in explicit mode: the interceptor leaves the data path); any other destination is
     * connected to for real, so that what the world does not serve fails closed. Never one
     * of the censor's own addresses.
     */
    private readonly routed?: {
      ownAddresses: ReadonlySet<string>;
      servedByOrigin: (ip: string) => boolean;
      /** Gateway mode: the origin is on loopback here (PROXY line), not behind a route. */
      originOnLoopback?: boolean;
      /** Gateway mode: the only other destinations connected to for real. */
      reachable?: (ip: string) => boolean;
    },
  ) {}

  /**
   * Lab world only: hands the client's connection to the origin, with the bytes already read
   * and the original destination, so that the lab leaves the data path. False if it cannot.
   */
  handOver(socket: Socket, dst: Destination, client: { ip: string; port: number }, first: Buffer): boolean {
    if (this.world.mode !== "lab" || !this.originProcess || (this.routed && !this.routed.servedByOrigin(dst.ip))) return false;
    return this.originProcess.adopt(socket, { src: client.ip.replace(/^::ffff:/, ""), dst: dst.ip, srcPort: client.port, dstPort: dst.port }, first);
  }

  /** The messaging service a destination belongs to, if any (world data). */
  serviceOf(dst: Destination): string | undefined {
    return this.world.serviceOf(dst);
  }

  /** Lab world only: hands a flow to a messaging service's chat endpoint over to the relay. */
  toRelay(socket: Socket, dst: Destination, network: string, first: Buffer): boolean {
    if (this.world.mode !== "lab" || !this.relay) return false;
    const service = this.world.chatEndpoint(dst, dst.port, "tcp");
    if (!service) return false;
    this.relay.adopt(socket, network, service as Service, first);
    return true;
  }

  /** The address a destination name stands for in the world (for IP rules and the PROXY line). */
  resolve(host: string): string | undefined {
    if (isIP(host)) return host;
    if (!this.world.exists(host)) return undefined;
    const a = this.world.addresses(host);
    return a.v4[0] ?? a.v6[0];
  }

  /** In the lab world the origin always accepts, so connecting can wait until a flow is allowed. */
  lazyFor(dst: Destination): boolean {
    return this.world.mode === "lab" && (!this.routed || this.routed.servedByOrigin(dst.ip));
  }

  /** The base URL per-request forwarding sends a destination's HTTP requests to. */
  httpTarget(dst: Destination): string {
    if (this.viaOrigin(dst)) return `http://${this.origin!.host}:${this.origin!.port}`;
    this.guard(dst);
    return `http://${dst.ip.includes(":") ? `[${dst.ip}]` : dst.ip}:${dst.port}`;
  }

  /** Loop guard: never this host (loopback, unspecified) nor one of the lab's own listeners. */
  private guard(dst: Destination): void {
    const local = dst.ip.startsWith("127.") || dst.ip === "::1" || dst.ip === "0.0.0.0" || dst.ip === "::";
    if (local || this.routed?.ownAddresses.has(dst.ip) || this.own().some((o) => o.host === dst.ip && o.port === dst.port)) {
      throw new LoopError(`refusing to connect to ${dst.ip}:${dst.port}: the lab's own host (loop guard)`);
    }
    if (this.routed?.reachable && !this.routed.reachable(dst.ip)) {
      throw new LoopError(`refusing to connect to ${dst.ip}:${dst.port}: neither the lab world nor a service subnet (gateway mode)`);
    }
  }

  /** Whether a destination is reached through the origin's loopback listener (with a PROXY line). */
  private viaOrigin(dst: Destination): boolean {
    if (this.world.mode !== "lab") return false;
    return !this.routed || (!!this.routed.originOnLoopback && this.routed.servedByOrigin(dst.ip));
  }

  connect(dst: Destination, client: { ip: string; port: number }): Socket {
    if (this.viaOrigin(dst)) {
      if (!this.origin) throw new Error("the lab world has no origin server");
      const s = connect(this.origin.port, this.origin.host);
      s.setNoDelay(true);
      s.write(formatProxyHeader({ src: client.ip.replace(/^::ffff:/, ""), dst: dst.ip, srcPort: client.port, dstPort: dst.port }));
      return s;
    }
    this.guard(dst);
    const s = connect(dst.port, dst.ip);
    s.setNoDelay(true);
    return s;
  }
}
