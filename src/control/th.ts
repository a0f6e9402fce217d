// The control vantage: what a client outside the censor sees of a URL, for probes that
// compare their view with an uncensored one (OONI's web connectivity does). It speaks OONI's
// web connectivity test-helper protocol (the request and response of oohelperd, as
// ooni/probe-cli's internal/model/th.go defines them): POST a THRequest, get a THResponse.
// The lab answers from the world's side of the censor: the world's DNS, and real connections
// (TCP, TLS, one HTTP GET) through the lab's uncensored upstream, never through a judgement.
// Differences from OONI's helper: no redirects are followed; ALPN offers http/1.1 only; ASNs
// are 0 (the lab world has none); the world's addresses (198.18.0.0/15) are not flagged as
// bogons, since they are this world's public addresses.
import { isIP, type Socket } from "node:net";
import { readFileSync } from "node:fs";
import type { Lab } from "../lab/lab.js";
import { certFailure, endpointText, failureOf, httpGet, STEP_MS, tlsHandshake, titleOf } from "../probe/net.js";
import { canonicalAddress } from "../util/address.js";
import { HttpError } from "./http-error.js";

/** Endpoints a request may name (OONI's probes send the addresses they resolved: a few). */
const MAX_ENDPOINTS = 16;
/** The headers of the request the helper passes on (as oohelperd does). */
const PASSED_HEADERS = ["accept", "accept-language", "user-agent"];

export interface ThRequest { http_request: string; http_request_headers?: Record<string, string[]>; tcp_connect?: string[] }

export interface ThResponse {
  tcp_connect: Record<string, { status: boolean; failure: string | null }>;
  tls_handshake: Record<string, { server_name: string; status: boolean; failure: string | null }>;
  http_request: { body_length: number; failure: string | null; title: string; headers: Record<string, string>; status_code: number };
  dns: { failure: string | null; addrs: string[] };
  ip_info: Record<string, { asn: number; flags: number }>;
}

/** ip_info flags, as OONI's model numbers them. */
const RESOLVED_BY_PROBE = 1, RESOLVED_BY_TH = 2, VALID_FOR_DOMAIN = 8;

/** "ip:port" or "[ip6]:port" -> parts, canonical; undefined when it is neither. */
export function parseEndpoint(s: string): { ip: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const ip = canonicalAddress(m[1] ?? m[2]!);
  const port = Number(m[3]);
  return ip && port > 0 && port < 65536 ? { ip, port } : undefined;
}


/** Reads and checks a THRequest body. */
export function thRequest(b: Record<string, unknown>): { url: URL; headers: Record<string, string>; endpoints: { ip: string; port: number }[] } {
  if (typeof b.http_request !== "string") throw new HttpError(400, 'a test-helper request needs "http_request": the URL to measure (OONI\'s THRequest)');
  let url: URL;
  try {
    url = new URL(b.http_request);
  } catch {
    throw new HttpError(400, `http_request is not a URL: ${JSON.stringify(b.http_request)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new HttpError(400, `http_request must be http:// or https:// (got ${url.protocol})`);
  const headers: Record<string, string> = {};
  const given = b.http_request_headers;
  if (given !== undefined && (typeof given !== "object" || given === null || Array.isArray(given))) throw new HttpError(400, "http_request_headers must be an object of header -> [values]");
  for (const [k, v] of Object.entries((given ?? {}) as Record<string, unknown>)) {
    const value = Array.isArray(v) ? v[0] : v;
    if (PASSED_HEADERS.includes(k.toLowerCase()) && typeof value === "string" && !/[\r\n]/.test(value)) headers[k.toLowerCase()] = value.slice(0, 512);
  }
  const list = b.tcp_connect ?? [];
  if (!Array.isArray(list)) throw new HttpError(400, 'tcp_connect must be a list of "ip:port" endpoints');
  if (list.length > MAX_ENDPOINTS) throw new HttpError(400, `tcp_connect names ${list.length} endpoints; at most ${MAX_ENDPOINTS}`);
  const endpoints = list.map((e) => {
    const p = typeof e === "string" ? parseEndpoint(e) : undefined;
    if (!p) throw new HttpError(400, `tcp_connect: ${JSON.stringify(e)} is not an "ip:port" or "[ipv6]:port" endpoint`);
    return p;
  });
  return { url, headers, endpoints };
}

/** Connects to `ip:port` from outside the censor; the socket, or OONI's failure string. */
function connectOutside(lab: Lab, host: string, ip: string, port: number): Promise<Socket | { failure: string }> {
  // The lab world: only its own addresses exist on the far side (an address a censor spoofed elsewhere does not).
  const route = lab.upstream.route({ host, ip, port });
  if (route.name === "refused") return Promise.resolve({ failure: "connection_refused" });
  if (route.name === "origin" && !lab.world.hasAddress(ip)) return Promise.resolve({ failure: "host_unreachable" });
  let s: Socket;
  try {
    s = lab.upstream.connect({ host, ip, port }, { ip: "127.0.0.1", port: 0 });
  } catch (err) {
    return Promise.resolve({ failure: `connection_refused (${(err as Error).message})` });
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => { s.destroy(); resolve({ failure: "generic_timeout_error" }); }, STEP_MS);
    s.once("connect", () => { clearTimeout(timer); s.pause(); resolve(s); });
    s.once("error", (err) => { clearTimeout(timer); s.destroy(); resolve({ failure: failureOf(err) }); });
  });
}


/** Answers one THRequest from the world's side of the censor. */
export async function testHelper(lab: Lab, b: Record<string, unknown>): Promise<ThResponse> {
  const { url, headers, endpoints } = thRequest(b);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const tls = url.protocol === "https:";
  const ca = readFileSync(lab.pki.authority("lab").certFile);
  const out: ThResponse = { tcp_connect: {}, tls_handshake: {}, http_request: { body_length: -1, failure: null, title: "", headers: {}, status_code: -1 }, dns: { failure: null, addrs: [] }, ip_info: {} };
  // DNS, as the world answers it (a literal address is its own answer).
  const literal = isIP(host) ? canonicalAddress(host) : undefined;
  if (literal) out.dns.addrs = [literal];
  else if (lab.world.mode === "lab") {
    if (!lab.world.exists(host)) out.dns.failure = "dns_name_error";
    else { const a = lab.world.addresses(host); out.dns.addrs = [...a.v4, ...a.v6]; }
  } else {
    const a = await lab.upstream.resolve(host).catch(() => undefined);
    if (a) out.dns.addrs = [a]; else out.dns.failure = "dns_name_error";
  }
  const info = (ip: string, flag: number): void => { out.ip_info[ip] = { asn: 0, flags: (out.ip_info[ip]?.flags ?? 0) | flag }; };
  out.dns.addrs.forEach((ip) => info(ip, RESOLVED_BY_TH));
  endpoints.forEach((e) => info(e.ip, RESOLVED_BY_PROBE));
  // TCP (and TLS) to every endpoint, the probe's and the helper's own.
  const all = new Map<string, { ip: string; port: number }>();
  for (const e of [...endpoints, ...out.dns.addrs.map((ip) => ({ ip, port }))]) all.set(endpointText(e.ip, e.port), e);
  await Promise.all([...all].map(async ([key, e]) => {
    const s = await connectOutside(lab, host, e.ip, e.port);
    if ("failure" in s) { out.tcp_connect[key] = { status: false, failure: s.failure }; return; }
    out.tcp_connect[key] = { status: true, failure: null };
    if (!tls) { s.destroy(); return; }
    const t = await tlsHandshake(s, host, { ca });
    if ("failure" in t) { out.tls_handshake[key] = { server_name: host, status: false, failure: t.failure }; return; }
    const failure = certFailure(t);
    out.tls_handshake[key] = { server_name: host, status: failure === null, failure };
    // The lab's origin answers every name at every address: an address is valid for the name only where the world puts the name.
    if (failure === null && out.dns.addrs.includes(e.ip)) info(e.ip, VALID_FOR_DOMAIN);
    t.destroy();
  }));
  // One GET, to the first address of the helper's own lookup.
  const first = out.dns.addrs[0];
  if (first === undefined) {
    out.http_request.failure = out.dns.failure ?? "dns_lookup_error";
    return out;
  }
  const s = await connectOutside(lab, host, first, port);
  if ("failure" in s) { out.http_request.failure = s.failure; return out; }
  let stream: Socket = s;
  if (tls) {
    const t = await tlsHandshake(s, host, { ca });
    if ("failure" in t) { out.http_request.failure = t.failure; return out; }
    const failure = certFailure(t);
    if (failure) { t.destroy(); out.http_request.failure = failure; return out; }
    stream = t;
  }
  const r = await httpGet(stream, url.host, `${url.pathname}${url.search}`, { headers });
  if ("failure" in r) { out.http_request.failure = r.failure; return out; }
  out.http_request = { body_length: r.body.length, failure: null, title: titleOf(r.body), headers: r.headers, status_code: r.status };
  return out;
}
