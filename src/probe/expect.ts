// The verdict the lab's censor will produce for a target, computed from the policy without
// sending traffic: the observations a probe's DNS lookup, TCP connection and first bytes
// give the components (as the resolver and the interceptor build them), decided in order;
// the first stage that does not pass decides, read through the table in verdicts.ts.
import { isIP } from "node:net";
import type { Policy } from "../policy/engine.js";
import type { Observation, Verdict } from "../policy/types.js";
import type { World } from "../world/world.js";
import { blocks, connectEnactment, dnsEnactment, streamEnactment } from "../profile/actions.js";
import type { Observed } from "../profile/schema.js";
import { AT_CONNECT, AT_DNS, AT_HTTP, AT_TLS, dnsRcodeFailure, type Conclusion, type OoniBlocking } from "./verdicts.js";

export interface ExpectedVerdict {
  target: string;
  network: string;
  /** Lab time (ISO). */
  at: string;
  /** OONI web_connectivity's keys. */
  blocking: OoniBlocking;
  accessible: boolean;
  failure?: string;
  /** The lab's word (profiles' expect rows). */
  observe: Observed;
  /** Where the censor acts: dns, connect, tls, http (none: it lets everything be). */
  stage: "dns" | "connect" | "tls" | "http";
  rule?: string;
  profile?: string;
  seed?: string;
  /** A later connection to the same server is blocked too, for this long (the rule's residual). */
  residual?: { seconds: number; key: string };
  why: string;
}

/** A target a probe measures: an http(s) URL, or a bare name (https). */
export interface WebTarget { url: URL; host: string; port: number; tls: boolean }

/** The target as a URL; throws a clear error for what `expect` does not measure. */
export function webTarget(target: string): WebTarget {
  if (/^(service|tor|obfs4):/i.test(target)) throw new Error(`${target}: messaging services and Tor bridges are not web targets (chokepoint expect measures http(s) URLs and names)`);
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(target) ? target : `https://${target}/`);
  } catch {
    throw new Error(`${target}: not a URL or a name`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`${target}: only http and https URLs (got ${url.protocol.replace(/:$/, "")})`);
  const tls = url.protocol === "https:";
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return { url, host, port: url.port ? Number(url.port) : tls ? 443 : 80, tls };
}

/** What the censor will do to a probe's measurement of `target` on `network` at lab time `at`. */
export function expectedVerdict(policy: Policy, world: World, target: string, network: string, at: number): ExpectedVerdict {
  const t = webTarget(target);
  const base = { target, network, at: new Date(at).toISOString() };
  const conclude = (stage: ExpectedVerdict["stage"], c: Conclusion, v: Verdict, failure = c.failure): ExpectedVerdict => ({
    ...base, blocking: c.blocking, accessible: c.accessible, ...(failure ? { failure } : {}), observe: c.observe, stage,
    ...(v.rule ? { rule: v.rule } : {}), ...(v.profile ? { profile: v.profile } : {}), ...(v.seed ? { seed: v.seed } : {}),
    ...(v.residual && blocks(v.action) ? { residual: { seconds: v.residual.ms / 1000, key: v.residual.key } } : {}),
    why: c.why,
  });
  // 1. DNS (a literal address has no lookup).
  let ip = isIP(t.host) ? t.host : undefined;
  if (!ip) {
    const v = policy.decide({ name: t.host, qtype: "A", transport: "udp", protocol: "dns" }, at, network);
    const c = AT_DNS[dnsEnactment(v.action)];
    if (c !== "next") return conclude("dns", c, v, dnsEnactment(v.action) === "rcode" ? dnsRcodeFailure(v.action.type) : c.failure);
    if (!world.exists(t.host)) {
      return { ...base, blocking: false, accessible: false, failure: "dns_nxdomain_error", observe: "false", stage: "dns", why: "the name does not exist in the lab world (the control fails alike: not censorship)" };
    }
    ip = world.addresses(t.host).v4[0] ?? world.addresses(t.host).v6[0]!;
  }
  // 2. The TCP connection (address and port, as a packet filter sees them).
  const service = world.serviceOf({ host: t.host, ip });
  const at3: Observation = { ip, port: t.port, transport: "tcp", ...(service ? { service } : {}) };
  const onConnect = policy.decide(at3, at, network);
  const c2 = AT_CONNECT[connectEnactment(onConnect.action)];
  if (c2 !== "next") return conclude("connect", c2, onConnect);
  // 3. The first bytes: a ClientHello naming the host, or a GET of the URL's path.
  const path = `${t.url.pathname}${t.url.search}`;
  const first: Observation = t.tls
    ? { ...at3, protocol: "tls", sni: t.host, alpn: ["h2", "http/1.1"], fingerprints: ["tls"], payload: Buffer.from(t.host) }
    : { ...at3, protocol: "http", host: t.host, method: "GET", path, fingerprints: ["http"], payload: Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${t.host}\r\n\r\n`) };
  const onPayload = policy.decide(first, at, network);
  return conclude(t.tls ? "tls" : "http", (t.tls ? AT_TLS : AT_HTTP)[streamEnactment(onPayload.action)], onPayload);
}

/** Whether a computed verdict is what an expect row says (`residual`: a block that leaves a residual; `blockpage`: OONI's http-diff). */
export function agrees(expected: string, v: ExpectedVerdict): boolean {
  if (expected === v.observe) return true;
  if (expected === "residual") return !!v.residual;
  if (expected === "http-diff") return v.observe === "blockpage";
  return expected === v.blocking;
}
