// Short human descriptions of rules, for `show`, the live feed and generated docs.
import { formatDuration } from "../util/duration.js";
import { formatInstant } from "../util/time.js";
import type { Action, Match, Window } from "./model.js";

const SAMPLE = 3;

function names(list: string[]): string {
  return list.length <= SAMPLE ? list.join(", ") : `${list.slice(0, SAMPLE).join(", ")} and ${list.length - SAMPLE} more`;
}

export function describeMatch(m: Match): string {
  const parts: string[] = [];
  if (m.domain) parts.push(`DNS name ${names(m.domain)}`);
  if (m.host) parts.push(`HTTP Host ${names(m.host)}`);
  if (m.sni) parts.push(`TLS SNI ${names(m.sni)}`);
  if (m.url) parts.push(`URL ${names(m.url.map((u) => `${u.host}${u.path}`))}`);
  if (m.keyword) parts.push(`bytes ${names(m.keyword.patterns.map((p) => JSON.stringify(p)))}${m.keyword.ignoreCase ? " (any case)" : ""}`);
  if (m.ip) parts.push(`address ${names(m.ip)}`);
  if (m.port) parts.push(`port ${m.port.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(", ")}`);
  if (m.protocol) parts.push(`protocol ${m.protocol.join(", ")}`);
  if (m.fingerprint) parts.push(`fingerprint ${m.fingerprint.join(", ")}`);
  if (m.service) parts.push(`service ${m.service.join(", ")}`);
  if (m.all) parts.push("all traffic");
  return parts.join(" and ");
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
    case "mitm": return `mitm (CA ${a.ca})`;
    case "outage": return `outage (${a.mode})`;
    case "reject": return `reject "${a.error}"`;
    default: return a.type;
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
