import type { BoxModel } from "./box-model.js";

// The resolved profile model: what the policy engine compiles. Times are epoch milliseconds,
// durations milliseconds, rates bytes/s, list files already loaded.

export type Confidence = "P" | "O" | "N" | "S" | "U";

export type Action =
  | { type: "allow" }
  | { type: "nxdomain" } | { type: "refused" } | { type: "servfail" } | { type: "empty" } | { type: "truncate" }
  | { type: "spoof"; addresses: string[]; ttl: number }
  | { type: "drop"; timeoutMs?: number }
  | { type: "rst" } | { type: "fin" }
  | { type: "blockpage"; status: number; reason?: string; headers: Record<string, string>; body: string; /** Held this long before the page (the stream read and dropped). */ holdMs?: number }
  | { type: "tls-alert"; alert: number }
  | { type: "throttle"; rate?: number; delayMs?: number; loss?: number; stallMs?: number; afterBytes?: number }
  | { type: "mitm"; ca: string; copySubject: boolean; serverValid?: boolean }
  | { type: "shutdown" }
  | { type: "outage"; mode: "refuse" | "silent" }
  | { type: "reject"; error: string; status?: number }
  | { type: "queue"; maxMessages?: number };
export type ActionType = Action["type"];

export interface Residual { ms: number; key: "3-tuple" | "4-tuple"; renew: boolean }

/** A time window; every condition present must hold. */
export interface Window {
  start?: number;
  end?: number;
  daily?: { fromMs: number; toMs: number; days?: number[] };
  intermittent?: { onMs: number; offMs: number; anchor: number };
  relative?: { afterMs: number; forMs?: number };
  timezone: string;
}

/** Names in notation: "a.b" exact, ".a.b" name and subdomains, "*.a.b" subdomains only. */
export interface Match {
  domain?: string[];
  host?: string[];
  sni?: string[];
  url?: { host: string; path: string }[];
  keyword?: { patterns: string[]; ignoreCase: boolean };
  ip?: string[];
  port?: [number, number][];
  protocol?: string[];
  fingerprint?: string[];
  service?: string[];
  all?: boolean;
}

export interface Rule {
  id: string;
  profile: string;
  description?: string;
  match: Match;
  action: Action;
  /** Any window may hold (OR); absent = the profile's period. */
  windows?: Window[];
  networks: string[];
  seed?: string;
  confidence?: Confidence;
  probability?: number;
  residual?: Residual;
}

export interface Dpi {
  inspect: "first-segment" | "reassemble";
  reassembleBytes: number;
  reassembleTimeoutMs: number;
  hostCase: "insensitive" | "sensitive";
  direction: "client" | "server" | "both";
  /** The on-path box's model (profile/box-model.ts); absent: the default box. */
  box?: BoxModel;
}

export interface Expectation {
  target: string;
  observe: string;
  networks?: string[];
  at?: number;
  variant?: string;
  note?: string;
}

export interface Profile {
  id: string;
  title: string;
  country: string;
  timezone: string;
  period: { start: number; end?: number };
  /** "procedure" profiles are left out of time travel (see the schema). */
  kind: "event" | "procedure";
  description?: string;
  networks: string[];
  sources: string[];
  confidence?: Confidence;
  dpi: Dpi;
  world: { hosts: Record<string, string[]>; nonexistent: string[]; certs: Record<string, string> };
  rules: Rule[];
  variants: Record<string, { description?: string; confidence?: Confidence }>;
  /** The variant these rules were resolved with, if any. */
  variant?: string;
  expect: Expectation[];
  /** Where it was loaded from (absent for profiles built in code). */
  file?: string;
}

export const DEFAULT_DPI: Dpi = {
  inspect: "first-segment",
  reassembleBytes: 16384,
  reassembleTimeoutMs: 2000,
  hostCase: "insensitive",
  direction: "client",
};
