// Explicit-mode entry points: an HTTP proxy (absolute-form requests and CONNECT) and a SOCKS5
// proxy (CONNECT to a name, an IPv4 or an IPv6 address). The proxy username (HTTP Basic,
// SOCKS5 user/password) names the client's network; without one, the listener's network.
import { createServer, isIP, type Server, type Socket } from "node:net";
import { timingSafeEqual } from "node:crypto";
import { parseHttpHead } from "../dpi/classify.js";
import { unmap } from "../util/address.js";
import type { Interceptor } from "./interceptor.js";
import type { Destination, Upstream } from "./upstream.js";
import {  } from "../util/address.js";

export interface EntryOptions {
  network: string;
  networks: ReadonlySet<string>;
  /** Time a client has to send its proxy request (slowloris guard). */
  headTimeoutMs?: number;
  maxConnections?: number;
  /** Required with the username (HTTP Basic, SOCKS5 user/password) when set: an open proxy beyond loopback is never allowed. */
  password?: string;
}

export interface EntryStats {
  connections: number; badRequests: number; authFailures: number; headTimeouts: number; refused: number;
  /** Connections closed because the lab's own code failed on them (a bug: said on stderr, never a crash). */
  internalErrors?: number;
}

let lastFault = 0;

/** A connection the lab's own code failed on: closed and counted, said on stderr (at most once a minute), the lab goes on. */
function fault(s: Socket, err: unknown, stats: EntryStats): void {
  stats.internalErrors = (stats.internalErrors ?? 0) + 1;
  s.destroy();
  if (Date.now() - lastFault > 60_000) {
    lastFault = Date.now();
    process.stderr.write(`chokepoint: internal error on a connection (closed; the lab goes on; counted in status): ${(err as Error)?.stack ?? String(err)}\n`);
  }
}

const MAX_HEAD = 16 * 1024;

/** Destroys every connection of a server made here (held, dropped ones included): for stop(). */
export function destroyConnections(server: Server): void {
  for (const s of (server as Server & { live?: Set<Socket> }).live ?? []) s.destroy();
}

function withLimits(handler: (s: Socket) => void | Promise<void>, opts: EntryOptions, stats: EntryStats): Server {
  const live = new Set<Socket>();
  const server = createServer({ noDelay: true }, (s) => {
    stats.connections++;
    live.add(s);
    s.on("close", () => live.delete(s));
    s.on("error", () => s.destroy());
    try {
      const done = handler(s);
      if (done) done.catch((err: unknown) => fault(s, err, stats));
    } catch (err) {
      fault(s, err, stats);
    }
  });
  (server as Server & { live?: Set<Socket> }).live = live;
  server.maxConnections = opts.maxConnections ?? 20_000;
  server.on("drop", () => stats.refused++);
  server.on("error", () => undefined);
  return server;
}

/** Reads until `done(buf)` says enough, within a time and size limit. */
function readUntil(s: Socket, done: (buf: Buffer) => boolean, timeoutMs: number, onTimeout: () => void): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => { cleanup(); onTimeout(); s.destroy(); resolve(undefined); }, timeoutMs);
    const onData = (d: Buffer): void => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      if (done(buf)) { cleanup(); s.pause(); resolve(buf); }
      else if (buf.length > MAX_HEAD) { cleanup(); resolve(buf); }
    };
    const onEnd = (): void => { cleanup(); resolve(undefined); };
    const cleanup = (): void => { clearTimeout(timer); s.off("data", onData); s.off("end", onEnd); s.off("close", onEnd); };
    s.on("data", onData);
    s.once("end", onEnd);
    s.once("close", onEnd);
  });
}

/** A proxy username: a network, optionally "+TAG" (a probe's measurement id, carried by the flow's events); null when the tag is malformed. */
export function splitUser(user: string): { user: string; tag?: string } | null {
  const plus = user.indexOf("+");
  if (plus < 0) return { user };
  const tag = user.slice(plus + 1);
  return /^[A-Za-z0-9._:-]{1,64}$/.test(tag) ? { user: user.slice(0, plus), tag } : null;
}

/** The network (and tag) an HTTP proxy's Basic credentials name; {} without any (no password set); null when refused. */
function networkFromBasic(header: string | undefined, opts: EntryOptions): { network?: string; tag?: string } | null {
  if (!header) return opts.password === undefined ? {} : null;
  const m = /^Basic\s+(\S+)/i.exec(header);
  if (!m) return null;
  const text = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = text.indexOf(":");
  const split = splitUser(colon < 0 ? text : text.slice(0, colon));
  if (!split) return null;
  const { user, tag } = split;
  if (opts.password !== undefined && !samePassword(colon < 0 ? "" : text.slice(colon + 1), opts.password)) return null;
  if (opts.password !== undefined && user === "") return { network: opts.network, ...(tag ? { tag } : {}) };
  return opts.networks.has(user) ? { network: user, ...(tag ? { tag } : {}) } : null;
}

function samePassword(given: string, expected: string): boolean {
  const a = Buffer.from(given), b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function httpProxyServer(interceptor: Interceptor, upstream: Upstream, opts: EntryOptions, stats: EntryStats): Server {
  return withLimits(async (s) => {
    const head = await readUntil(s, (b) => b.includes("\r\n\r\n"), opts.headTimeoutMs ?? 10_000, () => stats.headTimeouts++);
    if (!head) return;
    const parsed = parseHttpHead(head);
    if (parsed && parsed !== "partial" && parsed.headerEnd > MAX_HEAD) {
      stats.badRequests++;
      s.end("HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    if (!parsed || parsed === "partial") {
      stats.badRequests++;
      s.end(head.length > MAX_HEAD ? "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n" : "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    const headText = head.toString("latin1", 0, parsed.headerEnd);
    const auth = /\r\nProxy-Authorization:\s*([^\r\n]*)/i.exec(headText)?.[1];
    const who = networkFromBasic(auth, opts);
    if (who === null) {
      stats.authFailures++;
      s.end(`HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="network (one of: ${[...opts.networks].join(", ")})"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const net = who.network ?? opts.network;
    const tag = who.tag ? { tag: who.tag } : {};
    if (parsed.method === "CONNECT") {
      const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(parsed.target);
      if (!m || Number(m[2]) > 65535) { stats.badRequests++; s.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"); return; }
      const dst = await destination(upstream, m[1]!, Number(m[2]));
      if (!dst) { s.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nX-Chokepoint: no such host\r\n\r\n"); return; }
      const rest = head.subarray(parsed.headerEnd);
      await interceptor.intercept(s, dst, net, {
        entry: "http-proxy", ...tag,
        ...(rest.length ? { initial: rest } : {}),
        hooks: {
          established: () => s.write("HTTP/1.1 200 Connection Established\r\n\r\n"),
          refused: (how) => { if (how === "rst") s.resetAndDestroy(); },
        },
      });
      return;
    }
    // Absolute-form: forward the request in origin form, without the proxy's own headers.
    let url: URL;
    try {
      url = new URL(parsed.target);
      if (url.protocol !== "http:") throw new Error("scheme");
    } catch {
      stats.badRequests++;
      s.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    const dst = await destination(upstream, url.hostname.replace(/^\[|\]$/g, ""), Number(url.port || 80));
    if (!dst) { s.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nX-Chokepoint: no such host\r\n\r\n"); return; }
    const lines = headText.split("\r\n").slice(1).filter((l) => l && !/^proxy-(authorization|connection):/i.test(l));
    const rewritten = Buffer.concat([Buffer.from(`${parsed.method} ${url.pathname}${url.search} ${parsed.version}\r\n${lines.join("\r\n")}\r\n\r\n`, "latin1"), head.subarray(parsed.headerEnd)]);
    await interceptor.intercept(s, dst, net, {
      entry: "http-proxy", ...tag,
      initial: rewritten,
      hooks: {
        established: () => undefined,
        refused: (how) => { if (how === "rst") s.resetAndDestroy(); },
      },
    });
  }, opts, stats);
}

async function destination(upstream: Upstream, host: string, port: number): Promise<Destination | undefined> {
  const ip = await upstream.resolve(host);
  if (!ip) return undefined;
  return { ...(isIP(host.replace(/^\[|\]$/g, "")) ? {} : { host: host.toLowerCase() }), ip, port };
}

export function socksServer(interceptor: Interceptor, upstream: Upstream, opts: EntryOptions, stats: EntryStats): Server {
  return withLimits(async (s) => {
    const limit = opts.headTimeoutMs ?? 10_000;
    const greet = await readUntil(s, (b) => b.length >= 2 && b.length >= 2 + b[1]!, limit, () => stats.headTimeouts++);
    if (!greet) return;
    if (greet[0] !== 5) { stats.badRequests++; s.destroy(); return; }
    const methods = [...greet.subarray(2, 2 + greet[1]!)];
    let rest = greet.subarray(2 + greet[1]!);
    let network = opts.network;
    let tag: string | undefined;
    if (methods.includes(2)) {
      s.write(Buffer.from([5, 2]));
      s.resume();
      const auth = rest.length ? rest : await readUntil(s, (b) => b.length >= 2 && b.length >= 3 + b[1]! && b.length >= 3 + b[1]! + b[2 + b[1]!]!, limit, () => stats.headTimeouts++);
      if (!auth || auth[0] !== 1) { stats.badRequests++; s.destroy(); return; }
      const split = splitUser(auth.toString("utf8", 2, 2 + auth[1]!));
      const user = split?.user ?? "\u0000";
      if (split?.tag) tag = split.tag;
      const pass = auth.toString("utf8", 3 + auth[1]!, 3 + auth[1]! + auth[2 + auth[1]!]!);
      rest = auth.subarray(3 + auth[1]! + auth[2 + auth[1]!]!);
      const known = opts.networks.has(user) || (opts.password !== undefined && user === "");
      if (!known || (opts.password !== undefined && !samePassword(pass, opts.password))) { stats.authFailures++; s.end(Buffer.from([1, 1])); return; }
      network = user || opts.network;
      s.write(Buffer.from([1, 0]));
    } else if (methods.includes(0) && opts.password === undefined) {
      s.write(Buffer.from([5, 0]));
    } else {
      s.end(Buffer.from([5, 0xff]));
      return;
    }
    s.resume();
    const req = rest.length >= 5 && complete(rest) ? rest : await readUntil(s, complete, limit, () => stats.headTimeouts++);
    if (!req) return;
    const reply = (code: number): Buffer => Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
    if (req[0] !== 5 || req[1] !== 1) { stats.badRequests++; s.end(reply(7)); return; } // CONNECT only
    const atyp = req[3]!;
    let host: string, off: number;
    if (atyp === 1) { host = [...req.subarray(4, 8)].join("."); off = 8; }
    else if (atyp === 4) { host = Array.from({ length: 8 }, (_, i) => req.readUInt16BE(4 + i * 2).toString(16)).join(":"); off = 20; }
    else if (atyp === 3) { host = req.toString("latin1", 5, 5 + req[4]!); off = 5 + req[4]!; }
    else { stats.badRequests++; s.end(reply(8)); return; }
    const port = req.readUInt16BE(off);
    const dst = await destination(upstream, host, port);
    if (!dst) { s.end(reply(4)); return; } // host unreachable: no such name in the world
    const after = req.subarray(off + 2);
    await interceptor.intercept(s, dst, network, {
      entry: "socks", ...(tag ? { tag } : {}),
      ...(after.length ? { initial: after } : {}),
      hooks: {
        established: () => s.write(reply(0)),
        refused: (how) => { if (how === "rst") s.end(reply(5)); }, // connection refused
      },
    });
  }, opts, stats);
}

/**
 * Transparent mode: TPROXY delivers every client TCP connection to this one listener; the
 * connection's own local end is where the client was going, its source address names the
 * network (one client namespace per network).
 */
export function transparentServer(interceptor: Interceptor, opts: EntryOptions, stats: EntryStats, networkOf: (ip: string) => string | undefined): Server {
  return withLimits((s) => {
    const strip = unmap;
    const network = networkOf(strip(s.remoteAddress));
    if (!network || s.localPort === undefined) { stats.badRequests++; s.resetAndDestroy(); return; }
    return interceptor.intercept(s, { ip: strip(s.localAddress), port: s.localPort }, network, { entry: "transparent" });
  }, opts, stats);
}

function complete(b: Buffer): boolean {
  if (b.length < 5) return false;
  const atyp = b[3];
  const need = atyp === 1 ? 10 : atyp === 4 ? 22 : atyp === 3 ? 7 + b[4]! : 5;
  return b.length >= need;
}
