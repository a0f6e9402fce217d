// What every action means, in one table: how a profile writes it (a bare word, a one-key map
// and its parameters), how it becomes the model, and what each part of the lab does with
// it (the resolver's answer, the interceptor at connect time and after the first bytes, the
// relay's submit and deliver legs, a kernel rule), whether it blocks, and how it is shown.
//
// The table is typed `{ [K in ActionType]: ... }`: adding a variant to `Action` (model.ts)
// fails to compile here until its row is written, and every component decides by reading
// its column (resolver, interceptor, relay, kernel rules, CLI), so none has a silent default.
// The schema's action names (schema.ts) are derived from this table.
import { z } from "zod";
import { parseDuration, parseRate } from "../util/duration.js";
import { suggest } from "../util/yaml-source.js";
import type { Action, ActionType } from "./model.js";
import { Duration, Probability, Rate } from "./values.js";

/** The resolver: answer from the world, an error code, spoofed or empty answers, TC, or no answer. */
export type DnsEnactment = "world" | "rcode" | "spoof" | "empty" | "truncate" | "silence";
/** The interceptor at connect time (address and port): go on to the payload, refuse, or stay silent. */
export type ConnectEnactment = "pass" | "reset" | "silence";
/** The interceptor after the client's first bytes. */
export type StreamEnactment = "pass" | "throttle" | "mitm" | "reset" | "close" | "page" | "alert" | "silence";
/** The relay, when a message reaches a service (the delivery leg holds whatever does not deliver). */
export type MessageEnactment = "deliver" | "throttle" | "outage" | "reject" | "queue" | "cut" | "silence";
/** A kernel rule (transparent and gateway modes): let through (the interceptor may still act), drop, or reset. */
export type KernelEnactment = "accept" | "drop" | "reset";
/** How the feed and the live view colour it. */
export type Shown = "allow" | "degrade" | "intercept" | "block";

type Of<K extends ActionType> = Extract<Action, { type: K }>;
/** A column that depends on the action's parameters (an outage's mode). */
type By<K extends ActionType, E> = E | ((a: Of<K>) => E);
type Params = Record<string, unknown>;

export interface ActionRow<K extends ActionType> {
  summary: string;
  /** Written as a bare word (with defaults). */
  bare: boolean;
  /** Written as `{ name: params }`: the parameters' schema. */
  params?: z.ZodType;
  /** The model from the written parameters (undefined for a bare word). */
  parse: (p: Params | unknown[] | undefined) => Of<K>;
  dns: DnsEnactment;
  connect: By<K, ConnectEnactment>;
  stream: StreamEnactment;
  message: By<K, MessageEnactment>;
  kernel: KernelEnactment;
  /** Whether a client is kept from what it wanted (residual triggers, scoring). */
  blocks: boolean;
  shown: Shown;
  /** Only a resolver can carry it: on a rule that matches no DNS name it is a validation error. */
  dnsOnly?: boolean;
}

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

const IpAddressList = z.array(z.string().min(1)).min(1);
const none = z.strictObject({});
const obj = (p: Params | unknown[] | undefined): Params => (p && !Array.isArray(p) ? p : {});

/** A DNS-only action: the other parts fall silent (a connection to nowhere). */
const dnsOnly = <K extends "nxdomain" | "refused" | "servfail" | "empty" | "truncate" | "spoof">(type: K, dns: DnsEnactment, summary: string, extra: Partial<ActionRow<K>> = {}): ActionRow<K> => ({
  summary, bare: true, parse: () => ({ type }) as Of<K>, dns, connect: "pass", stream: "silence", message: "silence", kernel: "accept",
  blocks: true, shown: "block", dnsOnly: true, ...extra,
});

export const ACTIONS: { [K in ActionType]: ActionRow<K> } = {
  allow: {
    summary: "let it through (an exception when placed before a blocking rule)",
    bare: true, parse: () => ({ type: "allow" }),
    dns: "world", connect: "pass", stream: "pass", message: "deliver", kernel: "accept", blocks: false, shown: "allow",
  },
  nxdomain: dnsOnly("nxdomain", "rcode", "answer NXDOMAIN"),
  refused: dnsOnly("refused", "rcode", "answer REFUSED"),
  servfail: dnsOnly("servfail", "rcode", "answer SERVFAIL"),
  empty: dnsOnly("empty", "empty", "answer NOERROR with no address"),
  truncate: dnsOnly("truncate", "truncate", "answer with TC set over UDP (the retry over TCP gets the world's answer)", { params: none, blocks: false, shown: "degrade" }),
  spoof: dnsOnly("spoof", "spoof", "answer with these addresses", {
    bare: false,
    params: z.union([IpAddressList, z.strictObject({ addresses: IpAddressList.describe("addresses to answer with"), ttl: z.number().int().min(0).optional().describe("TTL of the answers (default 60)") })]),
    parse: (p) => ({ type: "spoof", addresses: Array.isArray(p) ? (p as string[]) : (obj(p).addresses as string[]), ttl: Array.isArray(p) ? 60 : ((obj(p).ttl as number | undefined) ?? 60) }),
    message: "deliver", shown: "intercept",
  }),
  drop: {
    summary: "silence: the packets go nowhere until the client gives up",
    bare: true, params: z.strictObject({ timeout: Duration.optional().describe("close after this long (default 120s)") }),
    parse: (p) => {
      const t = obj(p).timeout === undefined ? undefined : parseDuration(obj(p).timeout as string | number);
      return t === undefined ? { type: "drop" } : { type: "drop", timeoutMs: t };
    },
    dns: "silence", connect: "silence", stream: "silence", message: "silence", kernel: "drop", blocks: true, shown: "block",
  },
  rst: {
    summary: "a TCP reset",
    bare: true, parse: () => ({ type: "rst" }),
    dns: "silence", connect: "reset", stream: "reset", message: "cut", kernel: "reset", blocks: true, shown: "block",
  },
  fin: {
    summary: "close the connection (FIN)",
    bare: true, parse: () => ({ type: "fin" }),
    dns: "silence", connect: "reset", stream: "close", message: "cut", kernel: "accept", blocks: true, shown: "block",
  },
  blockpage: {
    summary: "an HTTP response (status, headers, body; a reset on TLS)",
    bare: false,
    params: z.strictObject({
      status: z.number().int().min(100).max(599).optional().describe("HTTP status (default 403, or 302 with location)"),
      reason: z.string().optional().describe("the status line's reason phrase"),
      headers: z.record(z.string(), z.string()).optional().describe("extra response headers"),
      body: z.string().optional().describe("the page"),
      location: z.string().optional().describe("a redirect: sets Location (status defaults to 302)"),
      hold: Duration.optional().describe("hold the connection this long first, reading and dropping what the client sends (nothing reaches the server), then send the page and close (KZ HTTP 2019-20: about 15s)"),
    }),
    parse: (raw) => {
      const p = obj(raw);
      const location = p.location as string | undefined;
      const status = (p.status as number | undefined) ?? (location ? 302 : 403);
      const headers = { ...((p.headers as Record<string, string> | undefined) ?? {}) };
      if (location) headers.Location = location;
      const reason = (p.reason as string | undefined) ?? STATUS_REASON[status];
      const hold = p.hold === undefined ? undefined : parseDuration(p.hold as string | number);
      return { type: "blockpage", status, headers, body: (p.body as string | undefined) ?? "", ...(reason ? { reason } : {}), ...(hold !== undefined ? { holdMs: hold } : {}) };
    },
    dns: "world", connect: "reset", stream: "page", message: "deliver", kernel: "accept", blocks: true, shown: "block",
  },
  "tls-alert": {
    summary: "a fatal TLS alert",
    bare: true, params: z.strictObject({ alert: z.union([z.number().int().min(0).max(255), z.string()]).optional().describe(`alert description: a number or ${Object.keys(TLS_ALERTS).join(", ")} (default handshake_failure)`) }),
    parse: (p) => {
      const a = obj(p).alert;
      return { type: "tls-alert", alert: typeof a === "number" ? a : (TLS_ALERTS[String(a ?? "handshake_failure")] ?? 40) };
    },
    dns: "silence", connect: "reset", stream: "alert", message: "silence", kernel: "accept", blocks: true, shown: "block",
  },
  throttle: {
    summary: "slow the flow (rate, added delay, loss, onset after N bytes)",
    bare: true,
    params: z.strictObject({
      rate: Rate.optional().describe("bytes per second (\"64kbit\", \"16KB/s\")"), delay: Duration.optional().describe("added to each chunk"),
      loss: Probability.optional().describe("share of chunks stalled as if lost (and of messages lost, in the relay)"),
      stall: Duration.optional().describe("how long a lost chunk stalls the flow"), afterBytes: z.number().int().min(0).optional().describe("throttle only after this many bytes"),
    }),
    parse: (raw) => {
      if (raw === undefined) return { type: "throttle", rate: 16 * 1024 };
      const p = obj(raw);
      const out: Of<"throttle"> = { type: "throttle" };
      if (p.rate !== undefined) out.rate = parseRate(p.rate as string | number)!;
      if (p.delay !== undefined) out.delayMs = parseDuration(p.delay as string | number)!;
      if (p.stall !== undefined) out.stallMs = parseDuration(p.stall as string | number)!;
      if (p.loss !== undefined) out.loss = p.loss as number;
      if (p.afterBytes !== undefined) out.afterBytes = p.afterBytes as number;
      return out;
    },
    dns: "world", connect: "pass", stream: "throttle", message: "throttle", kernel: "accept", blocks: false, shown: "degrade",
  },
  mitm: {
    summary: "intercept TLS with a certificate of the profile's CA",
    bare: true, params: z.strictObject({ ca: z.string().min(1).describe("the CA that signs (chokepoint ca list: lab, qaznet, isca-2020, isca, ...)"), copySubject: z.boolean().optional().describe("copy the real server's subject and names (default true, as the 2019 box did)"),
      serverValid: z.boolean().optional().describe("intercept only when the server presents a valid, trusted certificate (for any name); others are let through untouched (the 2019 box: IMC 2020 §3.2)") }),
    parse: (p) => (p === undefined ? { type: "mitm", ca: "lab", copySubject: true } : {
      type: "mitm", ca: obj(p).ca as string, copySubject: (obj(p).copySubject as boolean | undefined) ?? true,
      ...(obj(p).serverValid ? { serverValid: true } : {}),
    }),
    dns: "world", connect: "pass", stream: "mitm", message: "deliver", kernel: "accept", blocks: false, shown: "intercept",
  },
  shutdown: {
    summary: "the network passes nothing (silence)",
    bare: true, params: none, parse: () => ({ type: "shutdown" }),
    dns: "silence", connect: "silence", stream: "silence", message: "silence", kernel: "drop", blocks: true, shown: "block",
  },
  outage: {
    summary: "a messaging service is down (refuse: an error; silent: accepted, never delivered)",
    bare: true, params: z.strictObject({ mode: z.enum(["refuse", "silent"]).optional().describe("refuse: an error to the sender (default); silent: accepted, never delivered") }),
    parse: (p) => ({ type: "outage", mode: (obj(p).mode as "refuse" | "silent" | undefined) ?? "refuse" }),
    dns: "silence", connect: (a) => (a.mode === "refuse" ? "reset" : "silence"), stream: "silence", message: "outage", kernel: "drop", blocks: true, shown: "block",
  },
  reject: {
    summary: "a service refuses the message with an error",
    bare: true, params: z.strictObject({ error: z.string().optional().describe("the error the sender gets"), status: z.number().int().optional().describe("HTTP status the SMS gateway answers with") }),
    parse: (p) => {
      const status = obj(p).status as number | undefined;
      return { type: "reject", error: (obj(p).error as string | undefined) ?? "service unavailable", ...(status !== undefined ? { status } : {}) };
    },
    dns: "silence", connect: "reset", stream: "silence", message: "reject", kernel: "accept", blocks: true, shown: "block",
  },
  queue: {
    summary: "a service holds messages until the rule no longer holds",
    bare: true, params: z.strictObject({ maxMessages: z.number().int().positive().optional().describe("how many messages the queue holds (default 10,000)") }),
    parse: (p) => {
      const max = obj(p).maxMessages as number | undefined;
      return max === undefined ? { type: "queue" } : { type: "queue", maxMessages: max };
    },
    dns: "silence", connect: "silence", stream: "silence", message: "queue", kernel: "accept", blocks: true, shown: "degrade",
  },
};

export const ACTION_TYPES = Object.keys(ACTIONS) as ActionType[];
/** Actions written as a bare word. */
export const SIMPLE_ACTIONS = ACTION_TYPES.filter((t) => ACTIONS[t].bare);
/** Actions written as a one-key map with parameters, and the parameters' schemas. */
export const PARAM_ACTIONS: Partial<Record<ActionType, z.ZodType>> = Object.fromEntries(ACTION_TYPES.filter((t) => ACTIONS[t].params).map((t) => [t, ACTIONS[t].params!]));
export const ACTION_NAMES = [...ACTION_TYPES].sort();

const row = <K extends ActionType>(a: Of<K>): ActionRow<K> => ACTIONS[a.type as K] as ActionRow<K>;
const by = <K extends ActionType, E>(v: By<K, E>, a: Of<K>): E => (typeof v === "function" ? (v as (a: Of<K>) => E)(a) : v);

export const dnsEnactment = (a: Action): DnsEnactment => row(a).dns;
export const connectEnactment = (a: Action): ConnectEnactment => by(row(a).connect, a);
export const streamEnactment = (a: Action): StreamEnactment => row(a).stream;
export const messageEnactment = (a: Action): MessageEnactment => by(row(a).message, a);
export const kernelEnactment = (a: Action): KernelEnactment => row(a).kernel;
export const blocks = (a: Action): boolean => row(a).blocks;
/** How an action (by name, as events carry it) is shown; unknown names as blocks. */
export const shownAs = (type: string): Shown => (ACTIONS as Record<string, ActionRow<ActionType>>)[type]?.shown ?? "block";

/** For a switch that has covered every case: a new case is a compile error here. */
export function assertNever(x: never, what = "value"): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(x)}`);
}

/** A friendly message for an action that failed the schema, or undefined to use the generic one. */
export function describeActionProblem(value: unknown): string | undefined {
  const known = `known actions: ${ACTION_NAMES.join(", ")}`;
  const isType = (n: string): n is ActionType => n in ACTIONS;
  if (typeof value === "string") {
    if (isType(value) && ACTIONS[value].bare) return undefined;
    if (isType(value)) return `action "${value}" needs parameters, e.g. { ${value}: ... }`;
    const near = suggest(value, ACTION_NAMES);
    return `unknown action "${value}"${near.length ? ` (did you mean ${near.map((n) => `"${n}"`).join(" or ")}?)` : ""}; ${known}`;
  }
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length !== 1) return `an action is one word or a map with one key (the action's name); got ${keys.length} keys`;
    const name = keys[0]!;
    if (!isType(name) || !ACTIONS[name].params) {
      if (isType(name)) return `action "${name}" takes no parameters: write it as the bare word ${name}`;
      const near = suggest(name, ACTION_NAMES);
      return `unknown action "${name}"${near.length ? ` (did you mean ${near.map((n) => `"${n}"`).join(" or ")}?)` : ""}; ${known}`;
    }
    return undefined;
  }
  return `an action is one word or a one-key map; ${known}`;
}

/** Normalizes a schema-valid action. */
export function toAction(doc: unknown): Action {
  if (typeof doc === "string") return ACTIONS[doc as ActionType].parse(undefined);
  const [name, p] = Object.entries(doc as Record<string, unknown>)[0]!;
  return ACTIONS[name as ActionType].parse((p ?? {}) as Params | unknown[]);
}
