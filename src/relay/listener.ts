// How clients reach the relay: one port (explicit mode 127.0.0.1:5222) for JSON lines over
// TCP, WebSocket (an HTTP GET with Upgrade on the same port, for browsers) and JSON
// datagrams over UDP; and flows the interceptor hands over from the world's messaging
// endpoints (c.whatsapp.net:5222 and the like), whose network the path decides.
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer as createHttpServer, type IncomingMessage } from "node:http";
import { createServer, isIP, type Server, type Socket } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { ListenError, bindUdp, listenTcp } from "../runtime/listen.js";
import { MAX_FRAME, type RelayFrame, type Service } from "./protocol.js";
import type { Relay, Session, SessionTransport } from "./relay.js";
import type { ChatSink } from "../runtime/flows.js";
import { LIMITS, unitDeadline } from "../runtime/limits.js";
import { unmap } from "../util/address.js";

/** A client that reads this far behind gets no more deliveries until it catches up. */
const BACKLOG_BYTES = 1 << 20;
const UDP_SESSION_IDLE_MS = 120_000;
const MAX_UDP_SESSIONS = 10_000;
const IDLE_MS = 600_000;

/** A session over a byte stream: JSON lines. */
class LineSession implements Session {
  number?: string;
  network?: string;
  readonly transport: SessionTransport = "tcp";
  constructor(private readonly socket: Socket, readonly client: string, readonly pathNetwork?: string, readonly defaultVia?: Service) {}
  get backlogged(): boolean { return this.socket.writableLength > BACKLOG_BYTES; }
  get closed(): boolean { return this.socket.destroyed; }
  private corked = false;
  /** Frames written in one turn of the event loop leave in one system call (cork until the next tick). */
  write(f: RelayFrame): void {
    if (this.socket.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => { this.corked = false; this.socket.uncork(); });
    }
    this.socket.write(`${JSON.stringify(f)}\n`);
  }
  close(how: "rst" | "fin"): void { if (how === "rst") this.socket.resetAndDestroy(); else this.socket.end(); }
}

class WsSession implements Session {
  number?: string;
  network?: string;
  readonly transport: SessionTransport = "websocket";
  constructor(private readonly ws: WebSocket, readonly client: string) {}
  get backlogged(): boolean { return this.ws.bufferedAmount > BACKLOG_BYTES; }
  get closed(): boolean { return this.ws.readyState !== this.ws.OPEN; }
  write(f: RelayFrame): void { if (!this.closed) this.ws.send(JSON.stringify(f)); }
  close(how: "rst" | "fin"): void { if (how === "rst") this.ws.terminate(); else this.ws.close(1001, "closed by the network"); }
}

class UdpSession implements Session {
  number?: string;
  network?: string;
  readonly transport: SessionTransport = "udp";
  last = Date.now();
  /** Bytes of the last datagram from this peer: until it registers, no reply may be larger (no amplification for a spoofed source). */
  lastIn = 0;
  /** Replies not sent because they were larger than what the unregistered peer sent. */
  withheld = 0;
  private gone = false;
  constructor(private readonly udp: UdpSocket, readonly client: string, private readonly address: string, private readonly port: number, private readonly onClose: () => void,
    readonly pathNetwork?: string, readonly defaultVia?: Service) {}
  get backlogged(): boolean { return false; }
  get closed(): boolean { return this.gone; }
  write(f: RelayFrame): void {
    if (this.gone) return;
    const text = JSON.stringify(f);
    if (!this.number && Buffer.byteLength(text) > this.lastIn) { this.withheld++; return; }
    this.udp.send(text, this.port, this.address);
  }
  close(): void { if (!this.gone) { this.gone = true; this.onClose(); } }
}

export class RelayListener implements ChatSink {
  private tcp: Server | undefined;
  private udp: UdpSocket | undefined;
  /** Transparent mode: UDP sockets the censor sends a service's chat datagrams to (by DNAT). */
  private readonly chatUdp: UdpSocket[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly udpSessions = new Map<string, UdpSession>();
  // An upgrade request head must arrive within 10 s (checked every second), however it trickles.
  private readonly http = createHttpServer({ headersTimeout: LIMITS.unitMs, requestTimeout: LIMITS.unitMs, connectionsCheckingInterval: 1000 }, (req, res) => {
    res.writeHead(426, { "content-type": "text/plain; charset=utf-8", upgrade: "websocket", connection: "close" });
    res.end("chokepoint relay: speak JSON lines over TCP, or WebSocket here (see docs/relay.md)\n");
  });
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME });
  private sweeper: NodeJS.Timeout | undefined;
  port = 0;

  /** The relay's TCP listener (for the lab's connection budget), once listening. */
  get server(): Server | undefined {
    return this.tcp;
  }

  constructor(private readonly relay: Relay, private readonly host: string) {
    this.http.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.websocket(ws, `${socket.remoteAddress}:${socket.remotePort}`));
    });
    this.http.on("clientError", (_e, socket) => socket.destroy());
  }

  /** Binds TCP and UDP on the same port (with port 0, tries ephemeral ports until both fit). */
  async listen(port: number): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      try {
        this.tcp = createServer((s) => this.accept(s));
        this.tcp.on("error", () => undefined);
        this.port = await listenTcp(this.tcp, this.host, port, "relay (tcp)");
        this.udp = createSocket(isIP(this.host) === 6 ? "udp6" : "udp4");
        this.udp.on("error", () => undefined);
        await bindUdp(this.udp, this.host, this.port, "relay (udp)");
        this.udp.on("message", (msg, rinfo) => this.datagram(msg, rinfo.address, rinfo.port));
        this.sweeper = setInterval(() => this.sweepUdp(), 10_000).unref();
        return this.port;
      } catch (err) {
        await this.close();
        if (port !== 0 || attempt >= 20 || !(err instanceof ListenError) || !/in use/.test(err.message)) throw err;
      }
    }
  }

  /** A client connection on the relay's own port: WebSocket if it starts with an HTTP GET, JSON lines otherwise. */
  private accept(socket: Socket): void {
    socket.once("data", (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      if (first.subarray(0, 4).toString("latin1") === "GET ") {
        this.track(socket);
        this.http.emit("connection", socket);
        socket.resume();
      } else this.lines(socket);
    });
    socket.on("error", () => socket.destroy());
    socket.setTimeout(IDLE_MS, () => socket.destroy());
  }

  /**
   * A flow the interceptor let through to a messaging endpoint of the world (network from the
   * path, service from the endpoint). `first`: bytes already read from the client.
   */
  adoptChat(socket: Socket, network: string, service: string, first: Buffer): void {
    this.adopt(socket, network, service as Service, first);
  }

  adopt(socket: Socket, network: string, service: Service, first: Buffer): void {
    if (first.length) socket.unshift(first);
    socket.on("error", () => socket.destroy());
    socket.setTimeout(IDLE_MS, () => socket.destroy());
    this.lines(socket, network, service);
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
  }

  private lines(socket: Socket, pathNetwork?: string, defaultVia?: Service): void {
    this.track(socket);
    const session = new LineSession(socket, `${unmap(socket.remoteAddress)}:${socket.remotePort}`, pathNetwork, defaultVia);
    this.relay.opened();
    let buf = "";
    // A frame must arrive whole within the deadline, however the client trickles it.
    const deadline = unitDeadline(socket, () => this.relay.stats.trickled++);
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      buf += chunk;
      deadline.start();
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl).replace(/\r$/, "");
        buf = buf.slice(nl + 1);
        if (line.trim()) this.relay.frame(session, line);
        if (socket.destroyed) return;
      }
      if (Buffer.byteLength(buf) > MAX_FRAME) {
        this.relay.stats.oversizedFrames++;
        session.write({ type: "error", code: "too-large", message: `a frame is at most ${MAX_FRAME} bytes; closing` });
        buf = "";
        socket.end();
        socket.destroySoon();
      }
      if (!buf) deadline.done();
    });
    socket.once("close", () => {
      if (buf.trim()) this.relay.stats.partialFrames++;
      this.relay.closed(session);
    });
    socket.resume();
  }

  private websocket(ws: WebSocket, client: string): void {
    const session = new WsSession(ws, unmap(client));
    this.relay.opened();
    ws.on("message", (data, isBinary) => {
      if (isBinary) {
        this.relay.stats.badFrames++;
        session.write({ type: "error", code: "bad-frame", message: "frames are text (JSON)" });
        return;
      }
      this.relay.frame(session, data.toString());
    });
    ws.on("error", () => {
      this.relay.stats.oversizedFrames++;
      ws.terminate();
    });
    ws.once("close", () => this.relay.closed(session));
  }

  /**
   * Transparent mode: datagrams clients sent to a messaging service's UDP endpoints, which the
   * censor's nft rules deliver here (DNAT keeps the replies' source the endpoint's). The
   * client's address names its network, as for flows the interceptor hands over.
   */
  async listenChatUdp(host: string, port: number, service: Service, networkOf: (ip: string) => string | undefined): Promise<void> {
    const sock = createSocket(isIP(host) === 6 ? "udp6" : "udp4");
    sock.on("error", () => undefined);
    await bindUdp(sock, host, port, `relay (${service} udp)`);
    this.chatUdp.push(sock);
    sock.on("message", (msg, rinfo) => {
      const address = unmap(rinfo.address);
      const network = networkOf(address);
      if (!network) { this.relay.stats.badFrames++; return; }
      this.datagram(msg, rinfo.address, rinfo.port, { sock, network, service });
    });
  }

  private datagram(msg: Buffer, address: string, port: number, chat?: { sock: UdpSocket; network: string; service: Service }): void {
    const key = `${chat ? `${chat.service}:` : ""}${address}:${port}`;
    let s = this.udpSessions.get(key);
    if (!s) {
      if (this.udpSessions.size >= MAX_UDP_SESSIONS) {
        this.relay.stats.floods++;
        return;
      }
      s = new UdpSession(chat?.sock ?? this.udp!, key, address, port, () => {
        this.udpSessions.delete(key);
        this.relay.closed(s!);
      }, chat?.network, chat?.service);
      this.udpSessions.set(key, s);
      this.relay.opened();
    }
    s.last = Date.now();
    s.lastIn = msg.length;
    if (msg.length > MAX_FRAME) {
      this.relay.stats.oversizedFrames++;
      return;
    }
    this.relay.frame(s, msg.toString("utf8"));
  }

  private sweepUdp(): void {
    const now = Date.now();
    for (const s of [...this.udpSessions.values()]) if (now - s.last > UDP_SESSION_IDLE_MS) s.close();
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const s of [...this.udpSessions.values()]) s.close();
    for (const s of this.sockets) s.destroy();
    for (const ws of this.wss.clients) ws.terminate();
    try { this.udp?.close(); } catch { /* not bound */ }
    for (const c of this.chatUdp.splice(0)) { try { c.close(); } catch { /* not bound */ } }
    this.udp = undefined;
    const tcp = this.tcp;
    this.tcp = undefined;
    await new Promise<void>((r) => (tcp?.listening ? tcp.close(() => r()) : r()));
  }
}
