// The world's origin: one loopback listener that answers for every name and address of the
// lab world. It reads an optional PROXY header (the original destination, from the lab's
// own parts), then looks at the first bytes: a TLS ClientHello gets HTTPS (h2 or HTTP/1.1
// by ALPN) with a lab-CA certificate for the SNI name; an HTTP request gets HTTP; anything
// else, or a destination port that is not a web port, gets a TCP echo.
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createSecureServer, type Http2SecureServer } from "node:http2";
import { createServer, isIP, type AddressInfo, type Server, type Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { timingSafeEqual } from "node:crypto";
import type { Pki, Validity } from "../pki/pki.js";
import { serveDoh, DOH_HOSTS } from "./doh.js";
import { requestHost, servePage, type Req, type Res } from "./pages.js";
import { parseProxyHeader, type ProxyHeader } from "./proxy-header.js";
import type { World } from "./world.js";
import { isLoopback, unmap } from "../util/address.js";
import { Lru } from "../util/lru.js";

export const WEB_PORTS = new Set([80, 443, 8080, 8443]);
const SNIFF_TIMEOUT_MS = 10_000;
const IDLE_TIMEOUT_MS = 120_000;
const SNI_RE = /^[a-z0-9_]([a-z0-9_-]{0,62}\.)*[a-z0-9_-]{0,63}\.?$/i;

export interface OriginStats {
  connections: number; https: number; http: number; echo: number; h2: number;
  noSni: number; badSni: number; tlsErrors: number; badRequests: number; badProxyHeaders: number; sniffTimeouts: number;
}

export class Origin {
  readonly stats: OriginStats;
  /** The listener (after listen()). */
  server: Server | undefined;
  private readonly http1: HttpServer;
  /** One TLS front per destination address, bounded (a client chooses the addresses). */
  private readonly fronts = new Lru<string, Http2SecureServer>(256);
  private readonly handler: (req: Req, res: Res) => void;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly world: World, private readonly pki: Pki, stats?: OriginStats) {
    this.stats = stats ?? { connections: 0, https: 0, http: 0, echo: 0, h2: 0, noSni: 0, badSni: 0, tlsErrors: 0, badRequests: 0, badProxyHeaders: 0, sniffTimeouts: 0 };
    const handler = (req: Req, res: Res): void => {
      if (DOH_HOSTS.has(requestHost(req))) serveDoh(world, req, res);
      else servePage(req, res);
    };
    this.handler = handler;
    this.http1 = createHttpServer({ maxHeaderSize: 16 * 1024 }, handler);
    this.http1.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
      this.stats.badRequests++;
      if (socket.writable && err.code !== "ECONNRESET") socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      else socket.destroy();
    });
  }

  get address(): { host: string; port: number } {
    const a = this.server?.address() as AddressInfo | null;
    if (!a) throw new Error("origin is not listening");
    return { host: a.address, port: a.port };
  }

  /** The lab's secret for PROXY lines (explicit and gateway modes); undefined: not required. */
  secret: string | undefined;

  /**
   * Transparent mode: the origin sits in the world namespace behind TPROXY, so a connection's
   * own local address and port are the destination the client asked for (no PROXY line).
   */
  transparent = false;

  async listen(host = "127.0.0.1", port = 0): Promise<void> {
    this.server = createServer({ noDelay: true }, (s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(port, host, () => resolve());
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /**
   * Takes over a client connection judged elsewhere (the lab's interceptor hands allowed
   * flows over, with the bytes it already read, and leaves the data path).
   */
  adopt(socket: Socket, header: ProxyHeader, first: Buffer): void {
    this.accept(socket, { header, first });
  }

  private accept(socket: Socket, preset?: { header: ProxyHeader; first: Buffer }): void {
    this.stats.connections++;
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.setTimeout(SNIFF_TIMEOUT_MS, () => {
      this.stats.sniffTimeouts++;
      socket.destroy();
    });
    let buf: Buffer = preset?.first ?? Buffer.alloc(0);
    // Behind TPROXY the destination is the socket's own address; on loopback (a gateway's
    // origin is both) the lab's parts name it in a PROXY line.
    let header: ProxyHeader | undefined = preset?.header ?? (this.transparent && !isLoopback(socket.remoteAddress) ? ownDestination(socket) : undefined);
    const onData = (chunk: Buffer): void => {
      buf = buf.length && chunk.length ? Buffer.concat([buf, chunk]) : chunk.length ? chunk : buf;
      if (!buf.length) return;
      if (!header && isLoopback(socket.remoteAddress)) {
        const p = parseProxyHeader(buf);
        if (p === "more") return;
        // With a secret, only the lab's own parts (which know it) may name a destination: a
        // local process cannot forge one to get round the censor. (One that names none is
        // served as a plain visitor of the world, as the benchmarks' baseline is.)
        if (p === "invalid" || (this.secret !== undefined && p && !sameToken(p.token, this.secret))) {
          this.stats.badProxyHeaders++;
          socket.destroy();
          return;
        }
        if (p) {
          header = p.header;
          buf = buf.subarray(p.length);
          if (!buf.length) return;
        }
      }
      socket.off("data", onData);
      socket.pause();
      socket.unshift(buf);
      socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
      this.route(socket, buf, header);
    };
    socket.on("data", onData);
    if (preset?.first.length) onData(Buffer.alloc(0));
  }

  private route(socket: Socket, first: Buffer, header: ProxyHeader | undefined): void {
    const port = header?.dstPort;
    const web = port === undefined || WEB_PORTS.has(port);
    if (web && first[0] === 0x16) return this.tls(socket, header);
    if (web && /^[A-Z]{3,10} /.test(first.toString("latin1", 0, 11))) {
      this.stats.http++;
      this.http1.emit("connection", socket);
      socket.resume();
      return;
    }
    this.stats.echo++;
    socket.pipe(socket);
    socket.resume();
  }

  private tls(socket: Socket, header: ProxyHeader | undefined): void {
    this.stats.https++;
    const localIp = unmap(header?.dst ?? socket.localAddress ?? "127.0.0.1");
    // No resume() here: the TLS layer takes over the paused socket's handle (and reads the
    // bytes unshifted into it); resuming the raw socket as well would steal its input.
    let front: Http2SecureServer;
    try {
      front = this.secureServer(localIp);
    } catch {
      // A certificate the TLS library refuses fails this connection, never the origin.
      this.stats.tlsErrors++;
      socket.destroy();
      return;
    }
    front.emit("connection", socket);
  }

  /**
   * One TLS front per destination address (servers that never listen; connections are handed
   * to them): with SNI the certificate names the SNI; without (an IP-literal URL) it names
   * the address that was asked for. h2 and HTTP/1.1 by ALPN.
   */
  private secureServer(ip: string): Http2SecureServer {
    let server = this.fronts.get(ip);
    if (server) return server;
    const leaf = this.pki.leaf({ names: [ip] });
    server = createSecureServer({
      allowHTTP1: true,
      key: leaf.keyPem,
      cert: leaf.chainPem,
      SNICallback: (servername, cb) => {
        const name = servername.replace(/\.$/, "");
        if (!name || name.length > 255 || !(SNI_RE.test(name) || isIP(name))) {
          this.stats.badSni++;
          cb(new Error("unusable server name"));
          return;
        }
        try {
          cb(null, this.pki.context({ names: [name.toLowerCase()], validity: this.world.certKind(name) as Validity }));
        } catch (err) {
          cb(err as Error);
        }
      },
    }, this.handler);
    server.on("tlsClientError", () => this.stats.tlsErrors++);
    server.on("secureConnection", (tls: TLSSocket) => {
      if (!(tls as TLSSocket & { servername?: string | false }).servername) this.stats.noSni++;
      if (tls.alpnProtocol === "h2") this.stats.h2++;
    });
    this.fronts.set(ip, server);
    return server;
  }
}


function sameToken(a: string | undefined, b: string): boolean {
  if (a === undefined || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** The destination of a connection TPROXY delivered: its own local end. */
function ownDestination(s: Socket): ProxyHeader | undefined {
  const strip = unmap;
  if (!s.localAddress || !s.remoteAddress || s.localPort === undefined || s.remotePort === undefined) return undefined;
  return { src: strip(s.remoteAddress), dst: strip(s.localAddress), srcPort: s.remotePort, dstPort: s.localPort };
}
