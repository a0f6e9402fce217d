// Turns the YAML form of an action ("rst", { spoof: [...] }, { blockpage: {...} }) into the model.
import { parseDuration, parseRate } from "../util/duration.js";
import { suggest } from "../util/yaml-source.js";
import { ACTION_NAMES, PARAM_ACTIONS, SIMPLE_ACTIONS } from "./schema.js";
import type { Action } from "./model.js";

/** TLS alert descriptions by name (RFC 8446 §6). */
export const TLS_ALERTS: Record<string, number> = {
  close_notify: 0, unexpected_message: 10, handshake_failure: 40, bad_certificate: 42,
  certificate_unknown: 46, illegal_parameter: 47, access_denied: 49, decode_error: 50,
  protocol_version: 70, internal_error: 80, unrecognized_name: 112,
};

const STATUS_REASON: Record<number, string> = {
  200: "OK", 302: "Found", 403: "Forbidden", 404: "Not Found", 408: "Request Time-out",
  451: "Unavailable For Legal Reasons", 500: "Internal Server Error", 503: "Service Unavailable",
};

/** A friendly message for an action that failed the schema, or undefined to use the generic one. */
export function describeActionProblem(value: unknown): string | undefined {
  const known = `known actions: ${ACTION_NAMES.join(", ")}`;
  if (typeof value === "string") {
    if ((SIMPLE_ACTIONS as readonly string[]).includes(value)) return undefined;
    if (value in PARAM_ACTIONS) return `action "${value}" needs parameters, e.g. { ${value}: ... }`;
    const near = suggest(value, ACTION_NAMES);
    return `unknown action "${value}"${near.length ? ` (did you mean ${near.map((n) => `"${n}"`).join(" or ")}?)` : ""}; ${known}`;
  }
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length !== 1) return `an action is one word or a map with one key (the action's name); got ${keys.length} keys`;
    const name = keys[0]!;
    if (!(name in PARAM_ACTIONS)) {
      const near = suggest(name, ACTION_NAMES);
      return `unknown action "${name}"${near.length ? ` (did you mean ${near.map((n) => `"${n}"`).join(" or ")}?)` : ""}; ${known}`;
    }
    return undefined;
  }
  return `an action is one word or a one-key map; ${known}`;
}

/** Normalizes a schema-valid action. */
export function toAction(doc: unknown): Action {
  if (typeof doc === "string") {
    switch (doc) {
      case "drop": return { type: "drop" };
      case "tls-alert": return { type: "tls-alert", alert: TLS_ALERTS.handshake_failure! };
      case "throttle": return { type: "throttle", rate: 16 * 1024 };
      case "mitm": return { type: "mitm", ca: "lab", copySubject: true };
      case "outage": return { type: "outage", mode: "refuse" };
      case "reject": return { type: "reject", error: "service unavailable" };
      default: return { type: doc } as Action;
    }
  }
  const [name, p] = Object.entries(doc as Record<string, unknown>)[0]!;
  const params = (p ?? {}) as Record<string, unknown>;
  switch (name) {
    case "spoof": {
      const list = Array.isArray(p) ? (p as string[]) : (params.addresses as string[]);
      return { type: "spoof", addresses: list, ttl: Array.isArray(p) ? 60 : ((params.ttl as number | undefined) ?? 60) };
    }
    case "blockpage": {
      const location = params.location as string | undefined;
      const status = (params.status as number | undefined) ?? (location ? 302 : 403);
      const headers = { ...((params.headers as Record<string, string> | undefined) ?? {}) };
      if (location) headers.Location = location;
      const reason = (params.reason as string | undefined) ?? STATUS_REASON[status];
      return { type: "blockpage", status, headers, body: (params.body as string | undefined) ?? "", ...(reason ? { reason } : {}) };
    }
    case "drop": {
      const t = params.timeout === undefined ? undefined : parseDuration(params.timeout as string | number);
      return t === undefined ? { type: "drop" } : { type: "drop", timeoutMs: t };
    }
    case "tls-alert": {
      const a = params.alert;
      return { type: "tls-alert", alert: typeof a === "number" ? a : (TLS_ALERTS[String(a ?? "handshake_failure")] ?? 40) };
    }
    case "throttle": {
      const out: Action & { type: "throttle" } = { type: "throttle" };
      if (params.rate !== undefined) out.rate = parseRate(params.rate as string | number)!;
      if (params.delay !== undefined) out.delayMs = parseDuration(params.delay as string | number)!;
      if (params.stall !== undefined) out.stallMs = parseDuration(params.stall as string | number)!;
      if (params.loss !== undefined) out.loss = params.loss as number;
      if (params.afterBytes !== undefined) out.afterBytes = params.afterBytes as number;
      return out;
    }
    case "mitm": return { type: "mitm", ca: params.ca as string, copySubject: (params.copySubject as boolean | undefined) ?? true };
    case "outage": return { type: "outage", mode: (params.mode as "refuse" | "silent" | undefined) ?? "refuse" };
    case "reject": {
      const status = params.status as number | undefined;
      return { type: "reject", error: (params.error as string | undefined) ?? "service unavailable", ...(status !== undefined ? { status } : {}) };
    }
    case "queue": {
      const max = params.maxMessages as number | undefined;
      return max === undefined ? { type: "queue" } : { type: "queue", maxMessages: max };
    }
    default: return { type: name } as Action;
  }
}
