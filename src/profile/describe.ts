// Short human descriptions of rules, for `show`, the live feed and generated docs.
import { formatDuration } from "../util/duration.js";
import { formatInstant } from "../util/time.js";
import type { Action, Match, Window } from "./model.js";
import { assertNever } from "./actions.js";
import { MATCHERS, matchersOf, type MatcherName } from "./matchers.js";

const SAMPLE = 3;

function names(list: string[]): string {
  return list.length <= SAMPLE ? list.join(", ") : `${list.slice(0, SAMPLE).join(", ")} and ${list.length - SAMPLE} more`;
}

/** The values of one matcher, as text (the matcher's name comes from its declaration). */
const VALUES: { [K in MatcherName]: (v: NonNullable<Match[K]>) => string } = {
  domain: names, host: names, sni: names,
  url: (u) => names(u.map((x) => `${x.host}${x.path}`)),
  keyword: (k) => `${names(k.patterns.map((p) => JSON.stringify(p)))}${k.ignoreCase ? " (any case)" : ""}`,
  ip: names,
  port: (p) => p.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(", "),
  protocol: (p) => p.join(", "),
  fingerprint: (f) => f.join(", "),
  service: (s) => s.join(", "),
  all: () => "",
};

export function describeMatch(m: Match): string {
  return matchersOf(m).map((k) => `${MATCHERS[k].what} ${(VALUES[k] as (v: unknown) => string)(m[k])}`.trim()).join(" and ");
}

export function describeAction(a: Action): string {
  switch (a.type) {
    case "spoof": return `spoof ${a.addresses.join(", ")} (ttl ${a.ttl})`;
    case "blockpage": return `blockpage ${a.status}${a.headers.Location ? ` -> ${a.headers.Location}` : ""}`;
    case "drop": return a.timeoutMs ? `drop (${formatDuration(a.timeoutMs)})` : "drop";
    case "tls-alert": return `tls-alert ${a.alert}`;
    case "throttle": {
      const p: string[] = [];
      if (a.rate) p.push(`${Math.round(a.rate)} B/s`);
      if (a.delayMs) p.push(`+${formatDuration(a.delayMs)}`);
      if (a.loss) p.push(`${a.loss * 100}% loss`);
      if (a.afterBytes) p.push(`after ${a.afterBytes} B`);
      return `throttle ${p.join(", ")}`;
    }
    case "mitm": return `mitm (CA ${a.ca}${a.serverValid ? "; only servers with a valid certificate" : ""})`;
    case "outage": return `outage (${a.mode})`;
    case "reject": return `reject "${a.error}"`;
    case "allow": case "nxdomain": case "refused": case "servfail": case "empty": case "truncate":
    case "rst": case "fin": case "shutdown": case "queue":
      return a.type;
    default: return assertNever(a, "action");
  }
}

export function describeWindow(w: Window): string {
  const p: string[] = [];
  if (w.start !== undefined) p.push(`from ${formatInstant(w.start, w.timezone)}`);
  if (w.end !== undefined) p.push(`until ${formatInstant(w.end, w.timezone)}`);
  if (w.daily) {
    const hm = (ms: number): string => `${String(Math.floor(ms / 3_600_000)).padStart(2, "0")}:${String(Math.floor(ms / 60_000) % 60).padStart(2, "0")}`;
    p.push(`daily ${hm(w.daily.fromMs)}-${hm(w.daily.toMs)} ${w.timezone}`);
  }
  if (w.intermittent) p.push(`on ${formatDuration(w.intermittent.onMs)} / off ${formatDuration(w.intermittent.offMs)}`);
  if (w.relative) p.push(`${formatDuration(w.relative.afterMs)} after lab start${w.relative.forMs ? ` for ${formatDuration(w.relative.forMs)}` : ""}`);
  return p.join(", ");
}
