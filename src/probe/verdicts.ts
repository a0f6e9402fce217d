// What a correct probe concludes from what the censor did: one table, in the lab's own words
// (the `observe` vocabulary of profiles' expect rows) and in OONI's (web_connectivity's
// `blocking` and `accessible`, and the failure string its network code reports). Read by
// `chokepoint expect`, rendered into docs/VERDICTS.md (npm run docs).
//
// A web measurement meets the censor at three stages, in order: the DNS lookup (the
// resolver's enactment of the verdict on the name), the TCP connection (the interceptor's or
// the kernel's enactment on the address and port), and the first bytes (TLS ClientHello or
// HTTP request: the stream enactment). The first stage that does not pass decides.
// OONI's vocabulary: https://github.com/ooni/spec (ts-017 web_connectivity; df-007 errors).
import type { ConnectEnactment, DnsEnactment, StreamEnactment } from "../profile/actions.js";
import type { Observed } from "../profile/schema.js";

/** OONI web_connectivity's `blocking`. */
export type OoniBlocking = false | "dns" | "tcp_ip" | "http-failure" | "http-diff";

export interface Conclusion {
  /** The lab's word (profiles' `expect.observe`). */
  observe: Observed;
  /** OONI's web_connectivity test keys. */
  blocking: OoniBlocking;
  accessible: boolean;
  /** OONI's failure string, where the probe's network code sees one. */
  failure?: string;
  /** Why, in words (for the docs and the table). */
  why: string;
}

type Stage<E extends string> = Record<E, Conclusion | "next">;

/** The DNS stage. `rcode` depends on the code: see `dnsRcodeFailure`. */
export const AT_DNS: Stage<DnsEnactment> = {
  world: "next",
  rcode: { observe: "dns", blocking: "dns", accessible: false, failure: "dns_nxdomain_error", why: "the resolver answers an error code (NXDOMAIN, REFUSED, SERVFAIL)" },
  spoof: { observe: "dns", blocking: "dns", accessible: false, why: "the answer's addresses differ from the control's" },
  empty: { observe: "dns", blocking: "dns", accessible: false, failure: "dns_no_answer", why: "NOERROR with no address" },
  // A stub retries over TCP and gets the world's answer: not a block (the next stages decide).
  truncate: "next",
  silence: { observe: "dns", blocking: "dns", accessible: false, failure: "generic_timeout_error", why: "the query is never answered" },
};

/** OONI's failure string for a DNS error code. */
export function dnsRcodeFailure(action: string): string {
  return action === "nxdomain" ? "dns_nxdomain_error" : action === "refused" ? "dns_refused_error" : "dns_server_failure";
}

/** The TCP connection. */
export const AT_CONNECT: Stage<ConnectEnactment> = {
  pass: "next",
  reset: { observe: "tcp_ip", blocking: "tcp_ip", accessible: false, failure: "connection_refused", why: "the SYN is answered with a RST" },
  silence: { observe: "tcp_ip", blocking: "tcp_ip", accessible: false, failure: "generic_timeout_error", why: "the SYN is never answered" },
};

/** After a TLS ClientHello. */
export const AT_TLS: Record<StreamEnactment, Conclusion> = {
  pass: { observe: "false", blocking: false, accessible: true, why: "the handshake completes with the server's certificate" },
  throttle: { observe: "throttled", blocking: false, accessible: true, why: "the site loads, slowly (OONI does not flag throughput)" },
  mitm: { observe: "mitm", blocking: "http-failure", accessible: false, failure: "ssl_unknown_authority", why: "a certificate of the censor's CA (a client that trusts it sees the site)" },
  reset: { observe: "tls-reset", blocking: "http-failure", accessible: false, failure: "connection_reset", why: "the ClientHello is answered with a RST" },
  close: { observe: "tls-reset", blocking: "http-failure", accessible: false, failure: "eof_error", why: "the connection is closed (FIN) after the ClientHello" },
  page: { observe: "tls-reset", blocking: "http-failure", accessible: false, failure: "connection_reset", why: "no page can be shown over TLS: the ClientHello is answered with a RST" },
  alert: { observe: "tls-reset", blocking: "http-failure", accessible: false, failure: "ssl_failed_handshake", why: "a TLS alert instead of a ServerHello" },
  silence: { observe: "tls-timeout", blocking: "http-failure", accessible: false, failure: "generic_timeout_error", why: "the ClientHello is never answered" },
};

/** After an HTTP request. */
export const AT_HTTP: Record<StreamEnactment, Conclusion> = {
  pass: { observe: "false", blocking: false, accessible: true, why: "the server's page" },
  throttle: { observe: "throttled", blocking: false, accessible: true, why: "the page loads, slowly" },
  mitm: { observe: "false", blocking: false, accessible: true, why: "nothing to intercept in plain HTTP: the server's page" },
  reset: { observe: "http-failure", blocking: "http-failure", accessible: false, failure: "connection_reset", why: "the request is answered with a RST" },
  close: { observe: "http-failure", blocking: "http-failure", accessible: false, failure: "eof_error", why: "the connection is closed (FIN) after the request" },
  page: { observe: "blockpage", blocking: "http-diff", accessible: false, why: "a block page (or redirect) from the middle instead of the server's (after the rule's hold, if it has one: a probe that gives up sooner sees generic_timeout_error)" },
  alert: { observe: "http-failure", blocking: "http-failure", accessible: false, failure: "http_invalid_response", why: "bytes that are not an HTTP response" },
  silence: { observe: "http-failure", blocking: "http-failure", accessible: false, failure: "generic_timeout_error", why: "the request is never answered" },
};
