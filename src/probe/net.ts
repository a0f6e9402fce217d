// A probe's network steps, each bounded in time and reporting failures in OONI's words
// (df-007 errors): a DNS query to a given resolver (UDP, then TCP when the answer is
// truncated, as a stub does), a TLS handshake over a connected socket, one HTTP/1.1 GET.
// Used by the reference probe (web.ts) and the conformance run; they know nothing of the lab.
import { createSocket } from "node:dgram";
import { connect as tcpConnect, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { encodeQuery, replyAddresses, TYPE } from "../dns/wire.js";

export const STEP_MS = 3000;
/**
 * How long a probe waits for an HTTP response: longer than the other steps, since a censor
 * may hold the request before its block page (the 2020 Kazakh HTTP box: about 15 s).
 */
export const HTTP_MS = 20_000;

export interface Endpoint { host: string; port: number }

export type DnsReply = { rcode: number; addresses: string[]; truncated: boolean };

/** OONI's failure string for a socket error. */
export function failureOf(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? "";
  const msg = (err as Error | undefined)?.message ?? "";
  if (code === "ECONNRESET" || code === "EPIPE") return "connection_reset";
  if (code === "ECONNREFUSED") return "connection_refused";
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return "host_unreachable";
  if (code === "ETIMEDOUT") return "generic_timeout_error";
  // The SOCKS client's words (util/socks-client.ts): the proxy's reply code, or its time limit.
  if (/\(reply 5\b/.test(msg)) return "connection_refused";
  if (/\(reply [34]\b/.test(msg)) return "host_unreachable";
  if (/within \d|timed? ?out/i.test(msg)) return "generic_timeout_error";
  return `unknown_failure: ${msg || code || "error"}`;
}

function udpQuery(server: Endpoint, name: string, qtype: number, ms: number): Promise<DnsReply | "timeout"> {
  return new Promise((resolve) => {
    const sock = createSocket(server.host.includes(":") ? "udp6" : "udp4");
    const done = (r: DnsReply | "timeout"): void => { clearTimeout(timer); sock.close(); resolve(r); };
    const timer = setTimeout(() => done("timeout"), ms);
    sock.on("error", () => done("timeout"));
    sock.on("message", (m) => done({ ...replyAddresses(m, qtype), truncated: m.length > 2 && (m[2]! & 0x02) !== 0 }));
    sock.send(encodeQuery(Math.floor(Math.random() * 0xffff), name, qtype), server.port, server.host);
  });
}

function tcpQuery(server: Endpoint, name: string, qtype: number, ms: number): Promise<DnsReply | "timeout"> {
  return new Promise((resolve) => {
    const q = encodeQuery(Math.floor(Math.random() * 0xffff), name, qtype);
    const s = tcpConnect(server.port, server.host);
    let buf = Buffer.alloc(0);
    const done = (r: DnsReply | "timeout"): void => { clearTimeout(timer); s.destroy(); resolve(r); };
    const timer = setTimeout(() => done("timeout"), ms);
    s.on("error", () => done("timeout"));
    s.on("connect", () => { const len = Buffer.alloc(2); len.writeUInt16BE(q.length); s.write(Buffer.concat([len, q])); });
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done({ ...replyAddresses(buf.subarray(2, 2 + buf.readUInt16BE(0)), qtype), truncated: false });
    });
  });
}

/** One query to `server`, as a stub resolver makes it: UDP, and again over TCP if the answer is truncated. */
export async function dnsQuery(server: Endpoint, name: string, opts: { qtype?: "A" | "AAAA"; ms?: number } = {}): Promise<DnsReply | "timeout"> {
  const qtype = opts.qtype === "AAAA" ? TYPE.AAAA : TYPE.A;
  const ms = opts.ms ?? STEP_MS;
  const r = await udpQuery(server, name, qtype, ms);
  return r !== "timeout" && r.truncated ? tcpQuery(server, name, qtype, ms) : r;
}

/** A TLS handshake over `socket`; on failure the socket is reset (no TIME_WAIT: the same client port may try again). */
export function tlsHandshake(socket: Socket, servername: string, opts: { ms?: number; ca?: string | Buffer; alpn?: string[] } = {}): Promise<TLSSocket | { failure: string; timeout: boolean }> {
  return new Promise((resolve) => {
    const t = tlsConnect({ socket, servername, rejectUnauthorized: false, ALPNProtocols: opts.alpn ?? ["http/1.1"], ...(opts.ca ? { ca: opts.ca } : {}) });
    let settled = false;
    const done = (r: TLSSocket | { failure: string; timeout: boolean }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      t.off("error", onError);
      if (!("failure" in r)) return resolve(r);
      socket.resetAndDestroy();
      t.destroy();
      resolve(r);
    };
    const onError = (err: Error): void => done({ failure: /alert|handshake failure|wrong version/i.test(err.message) ? "ssl_failed_handshake" : failureOf(err), timeout: false });
    const timer = setTimeout(() => done({ failure: "generic_timeout_error", timeout: true }), opts.ms ?? STEP_MS);
    t.once("secureConnect", () => done(t));
    t.on("error", onError);
    t.once("close", () => done({ failure: "eof_error", timeout: false }));
  });
}

export interface HttpResponse { status: number; headers: Record<string, string>; body: Buffer }

/** Sends one GET over `s` and reads the response (to its Content-Length, or to the close); a failure in OONI's words. */
export function httpGet(s: Socket, host: string, path: string, opts: { ms?: number; headers?: Record<string, string>; maxBody?: number } = {}): Promise<HttpResponse | { failure: string }> {
  const maxBody = opts.maxBody ?? 1 << 24;
  return new Promise((resolve) => {
    let all = Buffer.alloc(0);
    const parsed = (): (HttpResponse & { complete: boolean }) | undefined => {
      const head = all.indexOf("\r\n\r\n");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(all.toString("latin1", 0, Math.min(all.length, 64)));
      if (!m || head < 0) return undefined;
      const headers: Record<string, string> = {};
      for (const line of all.toString("latin1", 0, head).split("\r\n").slice(1)) {
        const i = line.indexOf(":");
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] ??= line.slice(i + 1).trim();
      }
      const len = headers["content-length"] !== undefined ? Number(headers["content-length"]) : undefined;
      const body = all.subarray(head + 4);
      const complete = (len !== undefined && body.length >= len) || body.length >= maxBody;
      return { status: Number(m[1]), headers, body: len !== undefined ? body.subarray(0, len) : body, complete };
    };
    const done = (r: HttpResponse | { failure: string }): void => { clearTimeout(timer); s.destroy(); resolve(r); };
    const timer = setTimeout(() => done({ failure: "generic_timeout_error" }), opts.ms ?? STEP_MS);
    s.on("data", (d: Buffer) => {
      all = Buffer.concat([all, d]);
      const p = parsed();
      if (p?.complete) done({ status: p.status, headers: p.headers, body: p.body });
    });
    const ended = (err?: Error): void => {
      const p = parsed();
      if (p) return done({ status: p.status, headers: p.headers, body: p.body });
      done({ failure: err ? failureOf(err) : all.length ? "http_invalid_response" : "eof_error" });
    };
    s.on("error", ended);
    s.on("end", () => ended());
    s.resume();
    const extra = Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`);
  });
}

/** "ip:port", or "[ip6]:port": OONI's endpoint notation. */
export const endpointText = (ip: string, port: number): string => (ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`);

/** OONI's failure for a handshake whose certificate the trust anchor did not accept (null: valid for the name). */
export function certFailure(t: TLSSocket): string | null {
  const e = t.authorizationError ? String(t.authorizationError) : "";
  if (!e) return null;
  return /ALTNAME|HOSTNAME/i.test(e) ? "ssl_invalid_hostname" : /EXPIRED|NOT_YET/i.test(e) ? "ssl_invalid_certificate" : "ssl_unknown_authority";
}

/** The text of the first <title> of an HTML body (OONI compares titles). */
export function titleOf(body: Buffer): string {
  const m = /<title[^>]*>([^<]{0,512})<\/title>/i.exec(body.toString("utf8", 0, Math.min(body.length, 1 << 16)));
  return m ? m[1]!.trim() : "";
}
