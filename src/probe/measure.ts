// The project's own measurement code: what a probe on a network sees of a target, in the
// steps of OONI's web connectivity (DNS, TCP connect, TLS handshake, HTTP request), through
// the lab's explicit listeners for that network. The first step that fails names the
// observation, in OONI's words (dns, tcp_ip, http-failure, http-diff, false) and the lab's
// (tls-timeout, tls-reset, mitm, throttled, residual, service-unavailable).
import type { TLSSocket } from "node:tls";
import type { Socket } from "node:net";
import type { Lab } from "../lab/lab.js";
import { connectThroughSocks } from "../util/socks-client.js";
import { sitePage } from "../world/pages.js";
import { RelayClient } from "../relay/client.js";
import { dnsQuery as query, httpGet as get, HTTP_MS, STEP_MS, tlsHandshake as handshake } from "./net.js";
import type { Service } from "../relay/protocol.js";
import { unmap } from "../util/address.js";

export type Observed =
  | "dns" | "tcp_ip" | "http-failure" | "http-diff" | "false" | "tls-timeout" | "tls-reset" | "mitm"
  | "throttled" | "service-unavailable" | "residual" | "blockpage";

export interface Measurement { observed: Observed; detail: string }

/** Below this download rate a flow counts as throttled. */
const THROTTLED_BELOW = 256 * 1024;

/** The resolver listener of `network`. */
export function dnsEndpoint(lab: Lab, network: string): { host: string; port: number } {
  const ep = network === lab.network ? lab.endpoints.dns : lab.endpoints.networks?.[network]?.dns;
  if (!ep) throw new Error(`the lab has no DNS listener for network "${network}"`);
  return ep;
}

/** One A query to the network's resolver: rcode and addresses, or "timeout". */
export async function dnsQuery(server: { host: string; port: number }, name: string, ms = STEP_MS): Promise<{ rcode: number; addresses: string[] } | "timeout"> {
  return query(server, name, { ms });
}

/** A TLS handshake, or how it failed in the lab's words (a timeout, or a reset of any kind). */
async function tlsHandshake(socket: Socket, servername: string): Promise<TLSSocket | "tls-timeout" | "tls-reset"> {
  const t = await handshake(socket, servername);
  return "failure" in t ? (t.timeout ? "tls-timeout" : "tls-reset") : t;
}

/** One GET: the response, or "timeout" / "reset". */
async function httpGet(s: Socket, host: string, path: string): Promise<{ status: number; body: Buffer } | "timeout" | "reset"> {
  const r = await get(s, host, path, { ms: HTTP_MS, headers: { "User-Agent": "chokepoint-conformance", Accept: "*/*" } });
  return "failure" in r ? (r.failure === "generic_timeout_error" ? "timeout" : "reset") : r;
}

/**
 * Bytes per second of /bytes/N over `ms` (the download is cut off then), counted on the wire
 * (`raw`): through a slow link a whole 16 KB TLS record may not arrive in time to decrypt.
 */
function downloadRate(s: Socket, host: string, raw: Socket = s, ms = 1500): Promise<number> {
  return new Promise((resolve) => {
    const before = raw.bytesRead;
    const t0 = performance.now();
    const done = (): void => { clearTimeout(timer); const bytes = raw.bytesRead - before; s.destroy(); resolve(bytes / ((performance.now() - t0) / 1000)); };
    const timer = setTimeout(done, ms);
    s.on("end", done);
    s.on("error", done);
    s.resume();
    s.write(`GET /bytes/4194304 HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  });
}

export interface MeasureOptions { lab: Lab; network: string; labCaName: string; /** Skip the 1.5 s download that tells throttled flows (default: measure it). */ throughput?: boolean }

/** The lab CA's name, as an HTTPS client sees it in the issuer of an unintercepted flow. */
export function labCaName(lab: Lab): string {
  return lab.pki.authority("lab").spec.subject.CN;
}

/** Web connectivity for an http(s) URL, with the lab's extra observations. */
export async function measureUrl(o: MeasureOptions, url: URL): Promise<Measurement> {
  const { lab, network } = o;
  const host = url.hostname;
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const path = `${url.pathname}${url.search}`;
  const control = lab.world.answer(host, "A").answers.map((a) => a.address);
  // 1. DNS, at the network's resolver, against the world's answer.
  const dns = await dnsQuery(dnsEndpoint(lab, network), host);
  if (dns === "timeout") return { observed: "dns", detail: "no answer" };
  if (dns.rcode !== 0) return { observed: "dns", detail: `rcode ${dns.rcode}` };
  if (control.length && !dns.addresses.some((a) => control.includes(a))) return { observed: "dns", detail: `answered ${dns.addresses.join(", ") || "nothing"}` };
  const ip = control[0] ?? dns.addresses[0];
  if (!ip) return { observed: "dns", detail: "no address" };
  // 2-4. TCP, TLS, HTTP through the network's SOCKS5 entry (username = network).
  const socks = { ...lab.endpoints.socks!, username: network };
  const open = async (): Promise<Socket | undefined> => connectThroughSocks(socks, ip, port, STEP_MS).catch(() => undefined);
  const conn = await open();
  if (!conn) return { observed: "tcp_ip", detail: `${ip}:${port} does not connect` };
  let stream: Socket = conn;
  if (url.protocol === "https:") {
    const from = { address: conn.localAddress ?? "127.0.0.1", port: conn.localPort }; // gone once the socket is
    const tls = await tlsHandshake(conn, host);
    if (typeof tls === "string") return withResidual(o, tls, ip, port, from.address, from.port);
    const issuer = tls.getPeerCertificate().issuer?.CN ?? "?";
    if (issuer !== o.labCaName) {
      tls.destroy();
      return { observed: "mitm", detail: `issued by "${issuer}"` };
    }
    stream = tls;
  }
  const res = await httpGet(stream, host, path);
  if (res === "timeout" || res === "reset") return { observed: "http-failure", detail: res };
  if (res.status !== 200 || !res.body.equals(sitePage(host, url.pathname))) {
    return { observed: "http-diff", detail: `status ${res.status}${res.status !== 200 ? "" : ", body differs"}` };
  }
  if (o.throughput === false) return { observed: "false", detail: url.protocol === "https:" ? "TLS and HTTP fine" : "HTTP fine" };
  // 5. Throughput, on a connection of its own.
  const again = await open();
  if (!again) return { observed: "tcp_ip", detail: "a second connection failed" };
  const s2 = url.protocol === "https:" ? await tlsHandshake(again, host) : again;
  if (typeof s2 === "string") return { observed: s2, detail: "on a second connection" };
  const rate = await downloadRate(s2, host, again);
  if (rate < THROTTLED_BELOW) return { observed: "throttled", detail: `${Math.round(rate / 1024)} KiB/s` };
  return { observed: "false", detail: url.protocol === "https:" ? `TLS and HTTP fine (${Math.round(rate / 1024)} KiB/s)` : `HTTP fine (${Math.round(rate / 1024)} KiB/s)` };
}

/**
 * After a TLS failure: does an innocuous handshake to the same address and port, from the
 * same client port (a four-tuple residual keys on it), fail too? The detail says how long
 * the censor's table still holds it.
 */
async function withResidual(o: MeasureOptions, failure: "tls-timeout" | "tls-reset", ip: string, port: number, clientIp: string, clientPort?: number): Promise<Measurement> {
  const again = await connectThroughSocks({ ...o.lab.endpoints.socks!, username: o.network }, ip, port, STEP_MS, clientPort).catch(() => undefined);
  const innocuous = again ? await tlsHandshake(again, "innocuous.example") : "tcp_ip";
  if (typeof innocuous !== "string") {
    innocuous.destroy();
    return { observed: failure, detail: "no residual blocking" };
  }
  const left = o.lab.interceptor.residual.remaining(unmap(clientIp), ip, port, Date.now(), clientPort);
  return { observed: failure, detail: `then residual blocking${left ? ` (${Math.round(left / 1000)} s left)` : ""}` };
}

/** A messaging service, as its users see it: OONI's WhatsApp logic, or a message between two subscribers. */
export async function measureService(o: MeasureOptions, service: Service): Promise<Measurement> {
  const { lab, network } = o;
  if (service === "whatsapp") {
    const socks = { ...lab.endpoints.socks!, username: network };
    const tries = await Promise.all(Array.from({ length: 16 }, (_, i) => `e${i + 1}.whatsapp.net`).flatMap((e) => [443, 5222].map((p) =>
      connectThroughSocks(socks, e, p, 2000).then((s) => { s.destroy(); return true; }, () => false))));
    if (!tries.some(Boolean)) return { observed: "service-unavailable", detail: "no WhatsApp endpoint connects (OONI: blocked)" };
  }
  // A message from one subscriber of the network to another.
  const a = await RelayClient.connect(lab.endpoints.relay!);
  const b = await RelayClient.connect(lab.endpoints.relay!);
  try {
    const stamp = `${process.pid}${Date.now() % 100000}`;
    await a.register(`+1${stamp}1`, network);
    await b.register(`+1${stamp}2`, network);
    const arrives = b.next((f) => f.type === "message", 2000);
    const { answer } = await a.send(`+1${stamp}2`, "conformance", { via: service, ms: 2000 });
    if (!answer) return { observed: "service-unavailable", detail: "no answer" };
    if (answer.type === "error") return { observed: "service-unavailable", detail: `${answer.code}: ${answer.message}` };
    if (!(await arrives)) return { observed: "service-unavailable", detail: answer.type === "ack" ? `${answer.status}, not delivered` : "not delivered" };
    return { observed: "false", detail: "delivered" };
  } finally {
    a.close();
    b.close();
  }
}
