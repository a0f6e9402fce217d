// The reference probe's web connectivity: OONI's method (ts-017), for one URL from one
// network, written as an OONI measurement (df-000 base keys, web_connectivity test keys).
// 1. DNS: an A query to the network's resolver (UDP, TCP when truncated).
// 2. The control: the same URL asked of a test helper (OONI's THRequest, with the addresses
//    the probe resolved), which answers from outside the censor.
// 3. TCP to each resolved address, through the network's entry; TLS (SNI = the host) and one
//    HTTP GET on the first that connects.
// 4. The verdict, by comparing with the control: `blocking` is false, "dns", "tcp_ip",
//    "http-failure" or "http-diff", as web_connectivity 0.4 concludes it; null when the
//    control failed (nothing to compare with).
// It knows the lab only as a client does: a resolver address, a SOCKS5 entry, a test helper
// URL and the CA the world's sites are issued by.
import type { Socket } from "node:net";
import { X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import { certFailure, dnsQuery, endpointText, failureOf, httpGet, HTTP_MS, STEP_MS, titleOf, tlsHandshake, type Endpoint } from "./net.js";

export const PROBE_NAME = "chokepoint-probe";
/** The web_connectivity version whose keys and analysis this follows. */
export const WEB_CONNECTIVITY_VERSION = "0.4.3";

export interface WebOptions {
  /** The network's resolver. */
  dns: Endpoint;
  /** Opens a TCP connection to ip:port the way this probe reaches the world: through the network's SOCKS5 entry, or directly (transparent mode). */
  connect: (ip: string, port: number, ms: number) => Promise<Socket>;
  /** The SOCKS5 entry used (recorded as OONI's socksproxy), if any. */
  socksproxy?: string;
  /** POSTs a THRequest to the control vantage and returns its THResponse (or throws). */
  control: (request: ThRequestBody) => Promise<ThResponseBody>;
  /** The world's trust anchor (PEM): a certificate not issued under it is the censor's. */
  ca: string;
  network: string;
  /** The measurement id the flows were tagged with, recorded in the annotations. */
  tag?: string;
  /** Per step (ms): DNS, TCP, TLS. */
  stepMs?: number;
  /** For the HTTP response (default HTTP_MS, 20 s: a censor may hold a request before its page). */
  httpMs?: number;
  softwareVersion?: string;
}

export interface ThRequestBody { http_request: string; http_request_headers: Record<string, string[]>; tcp_connect: string[] }
export interface ThResponseBody {
  tcp_connect: Record<string, { status: boolean; failure: string | null }>;
  tls_handshake?: Record<string, { server_name: string; status: boolean; failure: string | null }>;
  http_request: { body_length: number; failure: string | null; title: string; headers: Record<string, string>; status_code: number };
  dns: { failure: string | null; addrs: string[] };
  ip_info?: Record<string, { asn: number; flags: number }>;
}

export type Blocking = false | "dns" | "tcp_ip" | "http-failure" | "http-diff" | null;

/** An OONI measurement (the keys this probe writes). */
export interface OoniMeasurement {
  annotations: Record<string, string>;
  data_format_version: "0.2.0";
  input: string;
  measurement_start_time: string;
  probe_asn: string;
  probe_cc: string;
  probe_ip: string;
  probe_network_name: string;
  report_id: string;
  resolver_asn: string;
  resolver_ip: string;
  software_name: string;
  software_version: string;
  test_keys: Record<string, unknown> & { blocking: Blocking; accessible: boolean | null };
  test_name: "web_connectivity";
  test_runtime: number;
  test_start_time: string;
  test_version: string;
}

const HEADERS: Record<string, string> = {
  accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
  "accept-language": "en-US,en;q=0.9",
  "user-agent": `Mozilla/5.0 (${PROBE_NAME})`,
};

/** OONI's time format: "YYYY-MM-DD hh:mm:ss", UTC. */
export const ooniTime = (t: number): string => new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "");


/** Headers a server sets for itself (OONI compares only these: common ones differ by path and proxy). */
const COMMON_HEADERS = new Set(["date", "content-type", "server", "cache-control", "vary", "set-cookie", "location", "expires", "x-powered-by", "content-encoding", "last-modified", "accept-ranges", "pragma", "x-frame-options", "etag", "x-content-type-options", "age", "via", "p3p", "x-xss-protection", "content-language", "cf-ray", "strict-transport-security", "link", "x-varnish", "content-length", "connection", "transfer-encoding", "keep-alive"]);

/** Measures one URL; never throws for what the network does (every failure is in the keys). */
export async function webConnectivity(target: string, o: WebOptions): Promise<OoniMeasurement> {
  const t0 = Date.now();
  const url = new URL(target);
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`${target}: web connectivity measures http(s) URLs`);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const ms = o.stepMs ?? STEP_MS;
  const keys: Record<string, unknown> = {
    agent: "redirect", client_resolver: o.dns.host, retries: null, socksproxy: o.socksproxy ?? null,
    queries: [], tcp_connect: [], tls_handshakes: [], requests: [],
    control_failure: null, dns_experiment_failure: null, http_experiment_failure: null,
  };
  // 1. DNS (a literal address has no lookup).
  let addrs: string[] = [];
  const literal = /^[\d.]+$|:/.test(host);
  if (literal) addrs = [host];
  else {
    const r = await dnsQuery(o.dns, host, { ms });
    const failure = r === "timeout" ? "generic_timeout_error" : r.rcode === 3 ? "dns_nxdomain_error" : r.rcode === 5 ? "dns_refused_error" : r.rcode !== 0 ? "dns_server_failure" : r.addresses.length ? null : "dns_no_answer";
    if (r !== "timeout") addrs = r.addresses;
    keys.dns_experiment_failure = failure;
    (keys.queries as unknown[]).push({ engine: "udp", resolver_address: endpointText(o.dns.host, o.dns.port), hostname: host, query_type: "A", answers: addrs.map((a) => ({ answer_type: "A", ipv4: a, ttl: null })), failure });
  }
  // 2. The control.
  let control: ThResponseBody | undefined;
  try {
    control = await o.control({ http_request: url.href, http_request_headers: Object.fromEntries(Object.entries(HEADERS).map(([k, v]) => [k, [v]])), tcp_connect: addrs.map((a) => endpointText(a, port)) });
    keys.control = control;
  } catch (err) {
    keys.control_failure = `unknown_failure: ${(err as Error).message}`;
  }
  // 3. TCP to each address; TLS and HTTP on the first that connects.
  let conn: Socket | undefined;
  for (const ip of addrs) {
    let failure: string | null = null;
    try {
      const s = await o.connect(ip, port, ms);
      if (conn) s.destroy(); else conn = s;
    } catch (err) {
      failure = failureOf(err);
    }
    (keys.tcp_connect as unknown[]).push({ ip, port, status: { success: failure === null, failure, blocked: null }, t: (Date.now() - t0) / 1000 });
  }
  let response: { status: number; headers: Record<string, string>; body: Buffer } | undefined;
  if (conn) {
    let stream: Socket | undefined = conn;
    if (url.protocol === "https:") {
      const address = endpointText(addrs.find((a) => (keys.tcp_connect as { ip: string; status: { success: boolean } }[]).some((x) => x.ip === a && x.status.success)) ?? addrs[0]!, port);
      const t = await tlsHandshake(conn, host, { ms, ca: o.ca, alpn: ["http/1.1"] });
      const details = "failure" in t ? {} : { tls_version: t.getProtocol(), cipher_suite: t.getCipher()?.standardName, negotiated_protocol: t.alpnProtocol || "", peer_certificates: peerChain(t) };
      const failure = "failure" in t ? t.failure : certFailure(t);
      (keys.tls_handshakes as unknown[]).push({ address, server_name: host, failure, no_tls_verify: false, t: (Date.now() - t0) / 1000, ...details });
      if (failure) { keys.http_experiment_failure = failure; if (!("failure" in t)) t.destroy(); stream = undefined; }
      else stream = t as TLSSocket;
    }
    if (stream) {
      const r = await httpGet(stream, url.host, `${url.pathname}${url.search}`, { ms: o.httpMs ?? HTTP_MS, headers: HEADERS });
      const request = { url: url.href, method: "GET", headers: HEADERS, body: "" };
      if ("failure" in r) {
        keys.http_experiment_failure = r.failure;
        (keys.requests as unknown[]).push({ request, response: { code: 0, headers: {}, body: null }, failure: r.failure });
      } else {
        response = r;
        (keys.requests as unknown[]).push({ request, response: { code: r.status, headers: r.headers, body: r.body.toString("utf8", 0, Math.min(r.body.length, 1 << 16)) }, failure: null });
      }
    }
  } else if (addrs.length) {
    keys.http_experiment_failure = (keys.tcp_connect as { status: { failure: string } }[])[0]?.status.failure ?? null;
  }
  Object.assign(keys, analyse(keys, addrs, port, control, response));
  return {
    annotations: { engine_name: PROBE_NAME, chokepoint_network: o.network, ...(o.tag ? { chokepoint_tag: o.tag } : {}) },
    data_format_version: "0.2.0",
    input: target,
    measurement_start_time: ooniTime(t0),
    probe_asn: "AS0", probe_cc: "ZZ", probe_ip: "127.0.0.1", probe_network_name: o.network,
    report_id: "", resolver_asn: "AS0", resolver_ip: o.dns.host,
    software_name: PROBE_NAME, software_version: o.softwareVersion ?? "0",
    test_keys: keys as OoniMeasurement["test_keys"],
    test_name: "web_connectivity",
    test_runtime: (Date.now() - t0) / 1000,
    test_start_time: ooniTime(t0),
    test_version: WEB_CONNECTIVITY_VERSION,
  };
}


function peerChain(t: TLSSocket): { data: string; format: "base64" }[] {
  const out: { data: string; format: "base64" }[] = [];
  let c = t.getPeerCertificate(true) as { raw?: Buffer; issuerCertificate?: unknown } | undefined;
  const seen = new Set<string>();
  while (c?.raw && out.length < 4) {
    const b64 = c.raw.toString("base64");
    if (seen.has(b64)) break;
    seen.add(b64);
    out.push({ data: b64, format: "base64" });
    c = c.issuerCertificate as typeof c;
  }
  return out;
}

/**
 * web_connectivity 0.4's header comparison: an uncommon header name (one a server sets for
 * itself) in both answers; when neither has any, the same set of header names.
 */
export function headersMatch(ours: Record<string, string>, theirs: Record<string, string>): boolean {
  const a = new Set(Object.keys(ours).map((k) => k.toLowerCase())), b = new Set(Object.keys(theirs).map((k) => k.toLowerCase()));
  const ua = [...a].filter((k) => !COMMON_HEADERS.has(k)), ub = [...b].filter((k) => !COMMON_HEADERS.has(k));
  if (!ua.length && !ub.length) return a.size === b.size && [...a].every((k) => b.has(k));
  return ua.some((k) => ub.includes(k));
}

/** web_connectivity 0.4's comparison with the control, as its keys. */
export function analyse(keys: Record<string, unknown>, addrs: string[], port: number, control: ThResponseBody | undefined, response: { status: number; headers: Record<string, string>; body: Buffer } | undefined): Record<string, unknown> {
  const dnsFailure = keys.dns_experiment_failure as string | null;
  const httpFailure = keys.http_experiment_failure as string | null;
  if (!control) return { dns_consistency: null, blocking: null, accessible: null };
  // DNS consistency: both fail alike, the addresses overlap, or the control found the probe's address valid for the name.
  const validForDomain = addrs.some((a) => ((control.ip_info?.[a]?.flags ?? 0) & 8) !== 0);
  const consistent =
    (dnsFailure === "dns_nxdomain_error" && control.dns.failure === "dns_name_error") ||
    (dnsFailure === null && (addrs.some((a) => control.dns.addrs.includes(a)) || validForDomain));
  const out: Record<string, unknown> = { dns_consistency: consistent ? "consistent" : "inconsistent" };
  const controlWorks = control.http_request.failure === null;
  if (response && control.http_request.status_code > 0) {
    const c = control.http_request;
    const bodyProportion = Math.min(response.body.length, c.body_length) / Math.max(response.body.length, c.body_length, 1);
    Object.assign(out, {
      body_length_match: bodyProportion > 0.7, body_proportion: bodyProportion,
      status_code_match: response.status === c.status_code,
      headers_match: headersMatch(response.headers, c.headers),
      title_match: titleOf(response.body) === c.title,
    });
  }
  if (dnsFailure !== null) {
    // Both ends fail to resolve: the name does not exist, not censorship.
    if (consistent) return { ...out, blocking: false, accessible: false };
    return { ...out, blocking: "dns", accessible: false };
  }
  if (!controlWorks) return { ...out, blocking: null, accessible: null };
  const blame = (b: Blocking): Record<string, unknown> => ({ ...out, blocking: consistent ? b : "dns", accessible: false });
  const connected = (keys.tcp_connect as { status: { success: boolean } }[]).some((t) => t.status.success);
  if (!connected) {
    // The control reached the same addresses: the path is blocked (else the site is down for everyone).
    const controlReached = addrs.some((a) => control.tcp_connect[endpointText(a, port)]?.status);
    return controlReached || !consistent ? blame("tcp_ip") : { ...out, blocking: false, accessible: false };
  }
  if (httpFailure !== null || !response) return blame("http-failure");
  const same = out.status_code_match === true && (out.body_length_match === true || out.headers_match === true || out.title_match === true);
  return same ? { ...out, blocking: false, accessible: true } : blame("http-diff");
}

/** The X.509 subject of a measurement's first peer certificate (for people reading a result). */
export function issuerOf(m: OoniMeasurement): string | undefined {
  const hs = (m.test_keys.tls_handshakes as { peer_certificates?: { data: string }[] }[] | undefined)?.[0];
  const der = hs?.peer_certificates?.[0]?.data;
  return der ? new X509Certificate(Buffer.from(der, "base64")).issuer : undefined;
}
