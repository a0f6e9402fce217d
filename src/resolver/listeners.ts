// The resolver's sockets for one network: UDP, and TCP with RFC 1035 length framing
// (several queries on one connection, answered as they come), idle timeouts, a cap on
// connections and on message size.
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, isIP, type Server, type Socket } from "node:net";
import { ListenError, bindUdp, listenTcp } from "../runtime/listen.js";
import type { Resolver } from "./resolver.js";
import { unitDeadline } from "../runtime/limits.js";

export interface DnsListenerOptions {
  network: string;
  host: string;
  port: number;
  /** Close a TCP connection idle for this long (default 10 s). */
  idleMs?: number;
  maxTcpConnections?: number;
}

/** Queries after which a client gets its own connected socket; how many such sockets; their idle life. */
const FAST_AFTER = 32;
const MAX_CONNECTED = 64;
const FAST_IDLE_MS = 30_000;

/** Largest query we accept over TCP; a DNS query is a few hundred bytes at most. */
const MAX_TCP_MESSAGE = 4096;

export class DnsListener {
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  private readonly conns = new Set<Socket>();
  port = 0;
  /** Off when helper processes share the socket (a connected socket would take their share). */
  fastPathEnabled = true;
  private readonly seen = new Map<string, number>();
  private readonly connected = new Map<string, { socket: UdpSocket; last: number }>();
  private sweeper: NodeJS.Timeout | undefined;

  /** The TCP listener (for the lab's connection budget), once listening. */
  get tcpServer(): Server | undefined {
    return this.tcp;
  }

  /** The UDP socket, to share with resolver helper processes. */
  get udpSocket(): UdpSocket | undefined {
    return this.udp;
  }

  constructor(private readonly resolver: Resolver, private readonly opts: DnsListenerOptions) {}

  async listen(): Promise<number> {
    // With an ephemeral port, UDP picks it and TCP must get the same one; another program may
    // hold that TCP port already, so try again with a new one.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.listenOnce();
      } catch (err) {
        await this.close();
        if (this.opts.port !== 0 || attempt >= 20 || !(err instanceof ListenError) || !/in use/.test(err.message)) throw err;
      }
    }
  }

  private async listenOnce(): Promise<number> {
    const { host, network } = this.opts;
    // reuseAddr: busy clients get a socket of their own on the same port (see fastPath).
    this.udp = createSocket({ type: isIP(host) === 6 ? "udp6" : "udp4", recvBufferSize: 4 << 20, reuseAddr: true });
    this.port = await bindUdp(this.udp, host, this.opts.port, `resolver (udp) for ${network}`);
    this.udp.on("error", () => undefined);
    this.udp.on("message", (msg, rinfo) => {
      const client = `${rinfo.address}:${rinfo.port}`;
      const out = this.resolver.handle(msg, { network, client, transport: "udp" });
      if (out instanceof Promise) void out.then((b) => b && this.udp?.send(b, rinfo.port, rinfo.address));
      else if (out) this.udp!.send(out, rinfo.port, rinfo.address);
      this.fastPath(client, rinfo.address, rinfo.port);
    });
    this.tcp = createServer((s) => this.accept(s));
    this.tcp.on("error", () => undefined);
    await listenTcp(this.tcp, host, this.port, `resolver (tcp) for ${network}`);
    return this.port;
  }

  /**
   * A client that keeps asking gets a UDP socket of its own, bound to the same address and
   * port and connected to it: the kernel delivers that client's datagrams there (the more
   * specific match), and replies go out without Node's per-send address handling, which is
   * a large share of a query's cost (a bare echo answers ~1.3x more queries this way).
   */
  private fastPath(client: string, address: string, port: number): void {
    if (!this.fastPathEnabled || this.connected.has(client) || this.connected.size >= MAX_CONNECTED) return;
    const n = (this.seen.get(client) ?? 0) + 1;
    if (this.seen.size > 10_000) this.seen.clear();
    this.seen.set(client, n);
    if (n !== FAST_AFTER) return;
    const cs = createSocket({ type: isIP(this.opts.host) === 6 ? "udp6" : "udp4", reuseAddr: true, recvBufferSize: 4 << 20 });
    const entry = { socket: cs, last: Date.now() };
    this.connected.set(client, entry);
    this.resolver.stats.udpClientSockets++;
    const drop = (): void => {
      if (this.connected.get(client) === entry) this.connected.delete(client);
      try { cs.close(); } catch { /* closed */ }
    };
    cs.on("error", drop);
    cs.on("message", (msg) => {
      entry.last = Date.now();
      const out = this.resolver.handle(msg, { network: this.opts.network, client, transport: "udp" });
      if (out instanceof Promise) void out.then((b) => b && cs.send(b));
      else if (out) cs.send(out);
    });
    cs.bind({ address: this.opts.host, port: this.port }, () => cs.connect(port, address));
    this.sweeper ??= setInterval(() => {
      const now = Date.now();
      for (const [c, e] of this.connected) if (now - e.last > FAST_IDLE_MS) { this.connected.delete(c); e.socket.close(); }
    }, 5000).unref();
  }

  private accept(socket: Socket): void {
    const stats = this.resolver.stats;
    if (this.conns.size >= (this.opts.maxTcpConnections ?? 1000)) {
      stats.tcpRefused++;
      socket.destroy();
      return;
    }
    stats.tcpConnections++;
    this.conns.add(socket);
    socket.on("close", () => this.conns.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.setNoDelay(true);
    socket.setTimeout(this.opts.idleMs ?? 10_000, () => {
      stats.tcpIdleTimeouts++;
      socket.destroy();
    });
    const client = `${socket.remoteAddress}:${socket.remotePort}`;
    let buf: Buffer = Buffer.alloc(0);
    // A message must arrive whole within the deadline, however the client trickles it.
    const deadline = unitDeadline(socket, () => stats.tcpTrickled++);
    socket.on("data", (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      deadline.start();
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (len < 12 || len > MAX_TCP_MESSAGE) {
          stats.tcpOversized++;
          socket.destroy();
          return;
        }
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const out = this.resolver.handle(msg, { network: this.opts.network, client, transport: "tcp" });
        if (out instanceof Promise) void out.then((b) => b && this.write(socket, b));
        else if (out) this.write(socket, out);
      }
      if (!buf.length) deadline.done();
    });
  }

  private write(socket: Socket, msg: Buffer): void {
    if (socket.destroyed) return;
    const frame = Buffer.allocUnsafe(2 + msg.length);
    frame.writeUInt16BE(msg.length, 0);
    msg.copy(frame, 2);
    socket.write(frame);
  }

  async close(): Promise<void> {
    for (const s of this.conns) s.destroy();
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const e of this.connected.values()) try { e.socket.close(); } catch { /* closed */ }
    this.connected.clear();
    try { this.udp?.close(); } catch { /* not bound */ }
    this.udp = undefined;
    const tcp = this.tcp;
    this.tcp = undefined;
    await new Promise<void>((r) => (tcp?.listening ? tcp.close(() => r()) : r()));
  }
}
