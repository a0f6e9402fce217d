// Instants and time zones. Profiles give times with an offset ("2014-02-13T17:00:00+06:00"),
// in UTC ("...Z"), or as local wall-clock time in the profile's time zone ("2014-02-13T17:00").
// Time zones are IANA names (tzdata of the running Node, which knows that Almaty moved from
// UTC+6 to UTC+5 on 2024-03-01) or fixed offsets ("+06:00", "UTC").

const FIXED_RE = /^(?:UTC|GMT|Z)?([+-])(\d{2}):?(\d{2})$/;
const formatterCache = new Map<string, Intl.DateTimeFormat>();
const offsetCache = new Map<string, number>();
/** Offsets are cached per zone and 15-minute bucket: every tzdata transition since 1970 lies on one. */
const BUCKET_MS = 15 * 60_000;

export function isValidTimeZone(tz: string): boolean {
  if (tz === "UTC" || tz === "Z" || FIXED_RE.test(tz)) return true;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function fixedOffset(tz: string): number | undefined {
  if (tz === "UTC" || tz === "Z" || tz === "GMT") return 0;
  const m = FIXED_RE.exec(tz);
  if (!m) return undefined;
  const minutes = Number(m[2]) * 60 + Number(m[3]);
  return m[1] === "-" ? -minutes : minutes;
}

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatterCache.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
      hour: "numeric", minute: "numeric", second: "numeric",
    });
    formatterCache.set(tz, f);
  }
  return f;
}

/** Offset of `tz` from UTC in minutes at the instant `ms` (east positive). */
export function tzOffsetMinutes(tz: string, ms: number): number {
  const fixed = fixedOffset(tz);
  if (fixed !== undefined) return fixed;
  const bucket = Math.floor(ms / BUCKET_MS);
  const key = `${tz}|${bucket}`;
  const hit = offsetCache.get(key);
  if (hit !== undefined) return hit;
  const at = bucket * BUCKET_MS;
  const parts: Record<string, number> = {};
  for (const p of formatter(tz).formatToParts(new Date(at))) {
    if (p.type !== "literal") parts[p.type] = Number(p.value);
  }
  const asUtc = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
  const offset = Math.round((asUtc - at) / 60_000);
  if (offsetCache.size > 100_000) offsetCache.clear();
  offsetCache.set(key, offset);
  return offset;
}

/** Milliseconds since local midnight, and the local weekday (0 = Sunday), of `ms` in `tz`. */
export function localTimeOfDay(tz: string, ms: number): { msOfDay: number; weekday: number; dayStart: number } {
  const local = ms + tzOffsetMinutes(tz, ms) * 60_000;
  const msOfDay = ((local % 86_400_000) + 86_400_000) % 86_400_000;
  const weekday = new Date(local - msOfDay).getUTCDay();
  return { msOfDay, weekday, dayStart: ms - msOfDay };
}

const INSTANT_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3})\d*)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * Parses an instant. Text without an offset is wall-clock time in `tz`.
 * Returns epoch milliseconds, or undefined when the text is not a valid date-time.
 */
export function parseInstant(text: string, tz = "UTC"): number | undefined {
  const m = INSTANT_RE.exec(text.trim());
  if (!m) return undefined;
  const [y, mo, d, h = "0", mi = "0", s = "0", frac = "0"] = m.slice(1, 8) as string[];
  const fields = [Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(s)] as const;
  if (fields[1] < 1 || fields[1] > 12 || fields[2] < 1 || fields[3] > 23 || fields[4] > 59 || fields[5] > 59) {
    return undefined;
  }
  const asUtc = Date.UTC(fields[0], fields[1] - 1, fields[2], fields[3], fields[4], fields[5], Number(frac.padEnd(3, "0")));
  // Reject 2011-02-30 and the like.
  if (new Date(asUtc).getUTCDate() !== fields[2]) return undefined;
  const zone = m[8];
  if (zone) return asUtc - (fixedOffset(zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone) ?? 0) * 60_000;
  // Local time: find the instant whose local rendering is asUtc (two passes settle any offset).
  let guess = asUtc - tzOffsetMinutes(tz, asUtc) * 60_000;
  guess = asUtc - tzOffsetMinutes(tz, guess) * 60_000;
  return guess;
}

/** "HH:MM" or "HH:MM:SS" to milliseconds since midnight; "24:00" allowed as the end of day. */
export function parseClockTime(text: string): number | undefined {
  const m = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(text.trim());
  if (!m) return undefined;
  const h = Number(m[1]), mi = Number(m[2]), s = Number(m[3] ?? 0);
  if (h > 24 || mi > 59 || s > 59 || (h === 24 && (mi > 0 || s > 0))) return undefined;
  return ((h * 60 + mi) * 60 + s) * 1000;
}

/** ISO text of `ms` rendered in `tz`, with its offset ("2014-02-13T17:00:00+06:00"). */
export function formatInstant(ms: number, tz = "UTC"): string {
  const off = tzOffsetMinutes(tz, ms);
  const local = new Date(ms + off * 60_000).toISOString().slice(0, 19);
  if (off === 0) return `${local}Z`;
  const sign = off < 0 ? "-" : "+";
  const abs = Math.abs(off);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

/** An instant option as epoch ms (ISO text in `tz`, UTC by default, unless it has an offset); a clear error otherwise. */
export function toInstant(v: string | number | Date | undefined, what: string, tz = "UTC"): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === "number") return v;
  if (v instanceof Date) return v.getTime();
  const t = parseInstant(v, tz);
  if (t === undefined) throw new Error(`${what}: not a date or date-time: "${v}" (e.g. 2014-02-13T17:00:00+06:00)`);
  return t;
}
