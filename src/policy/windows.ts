// Whether a window holds at a lab instant. Pure arithmetic on epoch milliseconds; local
// wall-clock conditions (daily) use the window's time zone at that instant.
import type { Window } from "../profile/model.js";
import { localTimeOfDay } from "../util/time.js";

export function windowActive(w: Window, t: number, labStart: number): boolean {
  if (w.start !== undefined && t < w.start) return false;
  if (w.end !== undefined && t >= w.end) return false;
  if (w.daily) {
    const { msOfDay, weekday } = localTimeOfDay(w.timezone, t);
    const { fromMs, toMs, days } = w.daily;
    let inside: boolean;
    let day = weekday;
    if (fromMs <= toMs) inside = msOfDay >= fromMs && msOfDay < toMs;
    else {
      // Crosses midnight: the early-morning part belongs to the previous day's window.
      inside = msOfDay >= fromMs || msOfDay < toMs;
      if (msOfDay < toMs) day = (weekday + 6) % 7;
    }
    if (!inside || (days && !days.includes(day))) return false;
  }
  if (w.intermittent) {
    const { onMs, offMs, anchor } = w.intermittent;
    const cycle = onMs + offMs;
    const phase = (((t - anchor) % cycle) + cycle) % cycle;
    if (phase >= onMs) return false;
  }
  if (w.relative) {
    const from = labStart + w.relative.afterMs;
    if (t < from) return false;
    if (w.relative.forMs !== undefined && t >= from + w.relative.forMs) return false;
  }
  return true;
}

/**
 * A lab instant after `t` before which `windowActive(w, ·)` cannot change: the next edge of
 * any of the window's conditions (never later than the true edge, possibly earlier). Daily
 * windows are re-checked at least hourly, so a change of UTC offset cannot be missed.
 */
export function windowStableUntil(w: Window, t: number, labStart: number): number {
  let until = Infinity;
  const edge = (at: number): void => { if (at > t && at < until) until = at; };
  if (w.start !== undefined) edge(w.start);
  if (w.end !== undefined) edge(w.end);
  if (w.daily) {
    const { msOfDay } = localTimeOfDay(w.timezone, t);
    const ahead = (to: number): number => t + ((((to - msOfDay) % 86_400_000) + 86_400_000) % 86_400_000 || 86_400_000);
    edge(ahead(w.daily.fromMs));
    edge(ahead(w.daily.toMs));
    if (w.daily.days) edge(ahead(0));
    edge(t + 3_600_000);
  }
  if (w.intermittent) {
    const { onMs, offMs, anchor } = w.intermittent;
    const cycle = onMs + offMs;
    const phase = (((t - anchor) % cycle) + cycle) % cycle;
    edge(t + (phase < onMs ? onMs - phase : cycle - phase));
  }
  if (w.relative) {
    const from = labStart + w.relative.afterMs;
    edge(from);
    if (w.relative.forMs !== undefined) edge(from + w.relative.forMs);
  }
  return until;
}
