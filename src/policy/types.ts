// What components tell the policy (an observation) and what it answers (a verdict).
import type { Action, Confidence, Residual } from "../profile/model.js";

export interface Observation {
  /** DNS query name and type (resolver). */
  name?: string;
  qtype?: string;
  /** HTTP request (interceptor). */
  host?: string;
  method?: string;
  path?: string;
  /** TLS ClientHello (interceptor). */
  sni?: string;
  alpn?: string[];
  /** Named fingerprints and "ja3:<md5>" / "ja4:<id>" of the flow. */
  fingerprints?: string[];
  /** The first bytes the client sent, for keyword rules. */
  payload?: Uint8Array;
  /** Destination. */
  ip?: string;
  port?: number;
  transport?: "tcp" | "udp";
  /** Application protocol as classified: dns, http, tls, ssh, openvpn, encrypted, unknown. */
  protocol?: string;
  /** Messaging service (relay). */
  service?: string;
  /** Flow id: makes `probability` rules deterministic per flow. */
  flow?: string;
}

export interface Verdict {
  action: Action;
  rule?: string;
  profile?: string;
  seed?: string;
  confidence?: Confidence;
  residual?: Residual;
}

export const ALLOW: Verdict = Object.freeze({ action: Object.freeze({ type: "allow" }) }) as Verdict;
