// Scoring a probe's verdicts against the ground truth: the lab's event log. Each measurement
// (a target, when, on which network, and the probe's verdict) is paired with the censor's
// decisions about that target in the measurement's time span; those decisions are read
// through the same table as `chokepoint expect` (verdicts.ts) into the verdict a correct probe
// reaches; the probe was right, wrong, or there is no ground truth (no decision seen).
import { readFileSync } from "node:fs";
import { ACTIONS, connectEnactment, dnsEnactment, streamEnactment } from "../profile/actions.js";
import type { Action, ActionType } from "../profile/model.js";
import { AT_CONNECT, AT_DNS, AT_HTTP, AT_TLS, dnsRcodeFailure, type Conclusion, type OoniBlocking } from "./verdicts.js";
import { webTarget } from "./expect.js";

export const BLOCKING_CLASSES = ["false", "dns", "tcp_ip", "http-failure", "http-diff"] as const;
export type BlockingClass = (typeof BLOCKING_CLASSES)[number];

/** One measurement of a probe, whatever its format. */
export interface Measurement {
  target: string;
  /** When it started, and how long it ran (ms since the epoch; ms). */
  start: number;
  runtimeMs?: number;
  network?: string;
  /** null: the probe reached no verdict (OONI's blocking null: its control failed). */
  verdict: BlockingClass | null;
  /** The measurement id its flows were tagged with (proxy username "NETWORK+TAG"): events are paired by it. */
  tag?: string;
  /** Where it came from (file:line), for the report. */
  source: string;
}

/** An event of the log, as far as scoring reads it. */
export interface LoggedEvent {
  ts: string;
  tag?: string;
  component: string;
  network?: string;
  action: string;
  rule?: string;
  observation?: { name?: string; qtype?: string; sni?: string; host?: string; ip?: string; port?: number; protocol?: string };
  detail?: { stage?: string; enforcedBy?: string; residual?: boolean; answers?: { address?: string }[] };
}

export interface ScoredRow {
  target: string;
  network?: string;
  start: string;
  source: string;
  verdict: BlockingClass | null;
  /** What a correct probe concludes from the censor's decisions (absent: no ground truth). */
  truth?: BlockingClass;
  result: "right" | "wrong" | "unknown";
  reason: string;
  rule?: string;
}

export interface Score {
  measurements: number;
  right: number;
  wrong: number;
  unknown: number;
  /** truth -> verdict -> count (measurements with ground truth). */
  confusion: Record<BlockingClass, Record<BlockingClass, number>>;
  /** Of "blocked" (any class but false): of the measurements the probe called blocked, the share that were; of those blocked, the share it found. */
  precision: number | null;
  recall: number | null;
  /** Blocked verdicts on flows the censor let be, out of those let be. */
  falsePositiveRate: number | null;
  rows: ScoredRow[];
}

/** The lab's words for what a probe saw, as OONI's blocking class (for plain result files). */
const FROM_OBSERVED: Record<string, BlockingClass> = {
  false: "false", dns: "dns", tcp_ip: "tcp_ip", "http-failure": "http-failure", "http-diff": "http-diff",
  "tls-timeout": "http-failure", "tls-reset": "http-failure", mitm: "http-failure", blockpage: "http-diff",
  throttled: "false", residual: "http-failure", accessible: "false", ok: "false", blocked: "http-failure",
};

export function toBlockingClass(v: unknown, where: string): BlockingClass {
  if (v === false || v === null || v === "false" || v === "none") return "false";
  const c = typeof v === "string" ? FROM_OBSERVED[v] : undefined;
  if (!c) throw new Error(`${where}: verdict ${JSON.stringify(v)} is not one of OONI's blocking classes (false, dns, tcp_ip, http-failure, http-diff) or the lab's words (tls-timeout, tls-reset, mitm, blockpage, throttled)`);
  return c;
}

/** OONI's time format ("2024-05-14 15:00:00", UTC) or ISO. */
function parseTime(v: unknown, where: string): number {
  const s = String(v ?? "");
  const t = Date.parse(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(s) ? `${s.replace(" ", "T")}Z` : s);
  if (Number.isNaN(t)) throw new Error(`${where}: no time (OONI's measurement_start_time, or "time" as an ISO instant): ${JSON.stringify(v)}`);
  return t;
}

/** One record: an OONI measurement (test_keys.blocking) or a plain {target, time, network?, verdict}. */
function toMeasurement(o: Record<string, unknown>, where: string, network?: string): Measurement | { skip: string } {
  const keys = o.test_keys as Record<string, unknown> | undefined;
  // Another OONI test (ooniprobe writes them all into one file): not scored, counted.
  if (keys && typeof o.test_name === "string" && o.test_name !== "web_connectivity") return { skip: o.test_name };
  if (keys && "input" in o) {
    const annotations = (o.annotations ?? {}) as Record<string, unknown>;
    const net = (annotations.chokepoint_network as string | undefined) ?? network;
    const tag = annotations.chokepoint_tag as string | undefined;
    if (!("blocking" in keys)) throw new Error(`${where}: an OONI measurement without test_keys.blocking (scoring reads web_connectivity)`);
    return {
      target: String(o.input), start: parseTime(o.measurement_start_time, where),
      ...(typeof o.test_runtime === "number" ? { runtimeMs: o.test_runtime * 1000 } : {}),
      ...(net ? { network: net } : {}), ...(tag ? { tag } : {}), verdict: keys.blocking === null ? null : toBlockingClass(keys.blocking, where), source: where,
    };
  }
  if (typeof o.target !== "string") throw new Error(`${where}: neither an OONI measurement (input, test_keys) nor {target, time, network?, verdict}`);
  const net = (o.network as string | undefined) ?? network;
  const tag = typeof o.tag === "string" && o.tag ? o.tag : undefined;
  return { target: o.target, start: parseTime(o.time, where), ...(net ? { network: net } : {}), ...(tag ? { tag } : {}), verdict: toBlockingClass(o.verdict, where), source: where };
}

/** Measurements from a file: JSON (one measurement or an array), JSON Lines, or CSV with a header (target,time,network,verdict). */
export function readMeasurements(file: string, network?: string): Measurement[] {
  return readResults(file, network).measurements;
}

/** As readMeasurements, with the measurements of other OONI tests left out and counted by test name. */
export function readResults(file: string, network?: string): { measurements: Measurement[]; skipped: Record<string, number> } {
  const skipped: Record<string, number> = {};
  const measurements: Measurement[] = [];
  for (const m of readAll(file, network)) {
    if ("skip" in m) skipped[m.skip] = (skipped[m.skip] ?? 0) + 1;
    else measurements.push(m);
  }
  return { measurements, skipped };
}

function readAll(file: string, network?: string): (Measurement | { skip: string })[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  const trimmed = text.trim();
  if (!trimmed) return [];
  if (/\.csv$/i.test(file)) {
    const lines = trimmed.split(/\r?\n/);
    const header = lines[0]!.split(",").map((h) => h.trim().toLowerCase());
    for (const need of ["target", "time", "verdict"]) if (!header.includes(need)) throw new Error(`${file}:1: a CSV of results needs the columns target, time, verdict (and network): got ${lines[0]}`);
    return lines.slice(1).filter((l) => l.trim()).map((l, i) => {
      const cells = l.split(",").map((c) => c.trim());
      const rec = Object.fromEntries(header.map((h, k) => [h, cells[k]]));
      return toMeasurement({ ...rec, network: rec.network || undefined }, `${file}:${i + 2}`, network);
    });
  }
  // JSON Lines (one measurement a line, as ooniprobe and miniooni write them), else one JSON
  // document: a measurement, pretty-printed, or an array of them.
  const lines = text.split("\n");
  const parsed = lines.map((line) => {
    if (!line.trim()) return null;
    try {
      return JSON.parse(line) as unknown;
    } catch {
      return undefined;
    }
  });
  if (!trimmed.startsWith("[") && parsed.every((p) => p !== undefined)) {
    return parsed.flatMap((o, i) => (o === null ? [] : [toMeasurement(o as Record<string, unknown>, `${file}:${i + 1}`, network)]));
  }
  let doc: unknown;
  try {
    doc = JSON.parse(trimmed);
  } catch (err) {
    const bad = parsed.findIndex((p) => p === undefined);
    throw new Error(`${file}:${bad + 1}: not JSON (neither JSON Lines nor one JSON document): ${(err as Error).message}`);
  }
  return (Array.isArray(doc) ? doc : [doc]).map((o, i) => toMeasurement(o as Record<string, unknown>, `${file}[${i}]`, network));
}

/** The lab's event log (JSON Lines); lines that are not events are counted, not fatal. */
export function readEvents(file: string): { events: LoggedEvent[]; skipped: number } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`--events ${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file (start the lab with --events FILE)" : (err as Error).message}`);
  }
  const events: LoggedEvent[] = [];
  let skipped = 0;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line) as LoggedEvent;
      if (typeof e.ts === "string" && typeof e.action === "string" && typeof e.component === "string") events.push(e);
      else skipped++;
    } catch {
      skipped++;
    }
  }
  return { events, skipped };
}

/** The action an event names (its type; parameters are not in the log: enactments that depend on them take their default). */
function actionOf(type: string): Action | undefined {
  return type in ACTIONS ? ({ type: type as ActionType } as Action) : undefined;
}

const asClass = (b: OoniBlocking): BlockingClass => (b === false ? "false" : b);

/** What a correct probe concludes from the censor's decisions about one measurement's target. */
export function groundTruth(events: LoggedEvent[]): { truth: BlockingClass; reason: string; rule?: string } | undefined {
  const decided = events.filter((e) => e.component !== "lab" && actionOf(e.action));
  if (!decided.length) return undefined;
  const by = (e: LoggedEvent, c: Conclusion, stage: string): { truth: BlockingClass; reason: string; rule?: string } =>
    ({ truth: asClass(c.blocking), reason: `${stage}: ${e.action} by ${e.component}${e.rule ? ` (rule ${e.rule})` : ""}: ${c.why}`, ...(e.rule ? { rule: e.rule } : {}) });
  // In the order they happened: the first decision that stops the measurement is what the
  // probe met (later ones, a retry caught by a residual block say, follow from it).
  const atConnect = (e: LoggedEvent): boolean => e.detail?.stage === "connect" || e.detail?.enforcedBy === "kernel" || !!e.detail?.residual;
  for (const e of [...decided].sort((x, y) => Date.parse(x.ts) - Date.parse(y.ts))) {
    const a = actionOf(e.action)!;
    if (e.component === "resolver") {
      const c = AT_DNS[dnsEnactment(a)];
      if (c !== "next") return { ...by(e, c, "DNS"), ...(dnsEnactment(a) === "rcode" ? { reason: `DNS: ${e.action} (${dnsRcodeFailure(e.action)}) by the resolver${e.rule ? ` (rule ${e.rule})` : ""}` } : {}) };
    } else if (atConnect(e)) {
      const c = AT_CONNECT[connectEnactment(a)];
      if (c !== "next") return by(e, c, "connection");
    } else {
      const c = (e.observation?.protocol === "http" ? AT_HTTP : AT_TLS)[streamEnactment(a)];
      if (c.blocking !== false) return by(e, c, "first bytes");
    }
  }
  return { truth: "false", reason: `the censor let it be (${decided.length} decision${decided.length > 1 ? "s" : ""}, none blocking)` };
}

/** The events about a measurement's target on its network in its time span. */
function eventsFor(m: Measurement, events: LoggedEvent[], windowMs: number): LoggedEvent[] {
  // A tagged measurement: its own flows' events, whenever they came (the resolver's are untagged: DNS by the same name in the span).
  if (m.tag) {
    const mine = events.filter((e) => e.tag === m.tag);
    const { tag: _tag, ...untagged } = m;
    if (mine.length) {
      // Its own lookups came just before its first flow: the last of each kind (A, AAAA) by the
      // name before it, and after any other tagged flow before it (OONI's start times are
      // whole seconds, so a span alone would take in the lookups of the measurement before).
      const first = Math.min(...mine.map((e) => Date.parse(e.ts)));
      const before = Math.max(-Infinity, ...events.filter((e) => e.tag && e.tag !== m.tag && Date.parse(e.ts) <= first).map((e) => Date.parse(e.ts)));
      const lookups = new Map<string, LoggedEvent>();
      for (const e of eventsFor(untagged, events.filter((x) => x.component === "resolver"), windowMs)) {
        const t = Date.parse(e.ts);
        if (t > before && t <= first) lookups.set(e.observation?.qtype ?? "", e);
      }
      return [...lookups.values(), ...mine];
    }
  }
  let host: string;
  try {
    host = webTarget(m.target).host;
  } catch {
    return [];
  }
  const from = m.start - 1000, to = m.start + (m.runtimeMs ?? 0) + windowMs;
  const inSpan = events.filter((e) => {
    const t = Date.parse(e.ts);
    return t >= from && t <= to && (!m.network || !e.network || e.network === m.network);
  });
  // The addresses the resolver gave for the name in that span: connections to them are the target's too.
  const ips = new Set<string>([host]);
  for (const e of inSpan) if (e.component === "resolver" && e.observation?.name?.replace(/\.$/, "").toLowerCase() === host) for (const a of e.detail?.answers ?? []) if (a.address) ips.add(a.address);
  return inSpan.filter((e) => {
    const o = e.observation ?? {};
    return [o.name, o.sni, o.host].some((n) => n?.replace(/\.$/, "").toLowerCase() === host) || (o.ip !== undefined && ips.has(o.ip));
  });
}

/** Scores each measurement against the log. `windowMs`: how long after its start (and runtime) a decision still belongs to it. */
export function score(measurements: Measurement[], events: LoggedEvent[], windowMs = 15_000): Score {
  const rows: ScoredRow[] = measurements.map((m) => {
    const truth = groundTruth(eventsFor(m, events, windowMs));
    const base = { target: m.target, ...(m.network ? { network: m.network } : {}), start: new Date(m.start).toISOString(), source: m.source, verdict: m.verdict };
    if (m.verdict === null) return { ...base, ...(truth ? { truth: truth.truth } : {}), result: "unknown" as const, reason: "the probe reached no verdict (blocking null: its control measurement failed)" };
    if (!truth) return { ...base, result: "unknown" as const, reason: "no decision of the censor about this target in the measurement's span (was the lab's --events on, the network and the time right?)" };
    return { ...base, truth: truth.truth, result: truth.truth === m.verdict ? "right" as const : "wrong" as const, reason: truth.reason, ...(truth.rule ? { rule: truth.rule } : {}) };
  });
  const confusion = Object.fromEntries(BLOCKING_CLASSES.map((t) => [t, Object.fromEntries(BLOCKING_CLASSES.map((v) => [v, 0]))])) as Score["confusion"];
  const known = rows.filter((r): r is ScoredRow & { truth: BlockingClass; verdict: BlockingClass } => !!r.truth && r.verdict !== null);
  for (const r of known) confusion[r.truth][r.verdict]++;
  const saidBlocked = known.filter((r) => r.verdict !== "false");
  const wasBlocked = known.filter((r) => r.truth !== "false");
  const letBe = known.filter((r) => r.truth === "false");
  const ratio = (a: number, b: number): number | null => (b ? a / b : null);
  return {
    measurements: rows.length,
    right: rows.filter((r) => r.result === "right").length,
    wrong: rows.filter((r) => r.result === "wrong").length,
    unknown: rows.filter((r) => r.result === "unknown").length,
    confusion,
    precision: ratio(saidBlocked.filter((r) => r.truth !== "false").length, saidBlocked.length),
    recall: ratio(wasBlocked.filter((r) => r.verdict !== "false").length, wasBlocked.length),
    falsePositiveRate: ratio(letBe.filter((r) => r.verdict !== "false").length, letBe.length),
    rows,
  };
}
