// Durations ("90s", "15m", "1h30m", "500ms", or a bare number of seconds) and rates.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_RE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART_RE = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/** Milliseconds, or undefined when the text is not a duration. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  const text = value.trim();
  if (/^\d+(?:\.\d+)?$/.test(text)) return Number(text) * 1000;
  if (!DURATION_RE.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(PART_RE)) total += Number(m[1]) * (UNIT_MS[m[2]!] ?? 0);
  return total;
}

const RATE_RE = /^(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit|b|kb|mb|gb|bps|kbps|mbps|gbps)?(?:\/s)?$/i;
const RATE_FACTOR: Record<string, number> = {
  b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3,
  bit: 1 / 8, kbit: 1000 / 8, mbit: 1e6 / 8, gbit: 1e9 / 8,
  bps: 1 / 8, kbps: 1000 / 8, mbps: 1e6 / 8, gbps: 1e9 / 8,
};

/** Bytes per second from a number (bytes/s) or text such as "64kbit", "2KB/s", "1mbit". */
export function parseRate(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value > 0 ? value : undefined;
  const m = RATE_RE.exec(value.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? "b").toLowerCase();
  const bytes = Number(m[1]) * (RATE_FACTOR[unit] ?? 1);
  return bytes > 0 ? bytes : undefined;
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms >= 3_600_000) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
