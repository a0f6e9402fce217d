import { describe, expect, it } from "vitest";
import { windowActive, windowStableUntil } from "../../src/policy/windows.js";
import type { Window } from "../../src/profile/model.js";

const T = (iso: string): number => Date.parse(iso);

describe("windows", () => {
  it("absolute: start inclusive, end exclusive", () => {
    const w: Window = { start: T("2014-02-13T11:00:00Z"), end: T("2014-02-13T12:30:00Z"), timezone: "UTC" };
    expect(windowActive(w, T("2014-02-13T10:59:59.999Z"), 0)).toBe(false);
    expect(windowActive(w, T("2014-02-13T11:00:00Z"), 0)).toBe(true);
    expect(windowActive(w, T("2014-02-13T12:29:59.999Z"), 0)).toBe(true);
    expect(windowActive(w, T("2014-02-13T12:30:00Z"), 0)).toBe(false);
  });
  it("daily in local time: 20:00-22:00 Almaty is 14:00-16:00Z in 2018 and 15:00-17:00Z in 2025", () => {
    const w: Window = { daily: { fromMs: 20 * 3_600_000, toMs: 22 * 3_600_000 }, timezone: "Asia/Almaty" };
    expect(windowActive(w, T("2018-06-01T13:59:59Z"), 0)).toBe(false);
    expect(windowActive(w, T("2018-06-01T14:00:00Z"), 0)).toBe(true);
    expect(windowActive(w, T("2018-06-01T15:59:59Z"), 0)).toBe(true);
    expect(windowActive(w, T("2018-06-01T16:00:00Z"), 0)).toBe(false);
    expect(windowActive(w, T("2025-06-01T14:30:00Z"), 0)).toBe(false);
    expect(windowActive(w, T("2025-06-01T15:30:00Z"), 0)).toBe(true);
  });
  it("daily with a fixed offset, across midnight, and on given days", () => {
    const w: Window = { daily: { fromMs: 23 * 3_600_000, toMs: 2 * 3_600_000, days: [5] }, timezone: "+05:00" };
    // Friday 2022-01-07 23:30 +05 = 18:30Z; Saturday 01:00 +05 belongs to Friday's window.
    expect(windowActive(w, T("2022-01-07T18:30:00Z"), 0)).toBe(true);
    expect(windowActive(w, T("2022-01-07T20:00:00Z"), 0)).toBe(true);
    expect(windowActive(w, T("2022-01-07T21:00:00Z"), 0)).toBe(false);
    // Thursday night is not in the window.
    expect(windowActive(w, T("2022-01-06T18:30:00Z"), 0)).toBe(false);
  });
  it("intermittent: on 40 minutes, off 15, from the anchor", () => {
    const anchor = T("2011-02-21T00:00:00Z");
    const w: Window = { intermittent: { onMs: 40 * 60_000, offMs: 15 * 60_000, anchor }, timezone: "UTC" };
    expect(windowActive(w, anchor, 0)).toBe(true);
    expect(windowActive(w, anchor + 39 * 60_000, 0)).toBe(true);
    expect(windowActive(w, anchor + 40 * 60_000, 0)).toBe(false);
    expect(windowActive(w, anchor + 54 * 60_000, 0)).toBe(false);
    expect(windowActive(w, anchor + 55 * 60_000, 0)).toBe(true);
    expect(windowActive(w, anchor + 10 * 55 * 60_000 + 41 * 60_000, 0)).toBe(false);
  });
  it("relative to lab start", () => {
    const start = T("2030-01-01T00:00:00Z");
    const w: Window = { relative: { afterMs: 10_000, forMs: 5_000 }, timezone: "UTC" };
    expect(windowActive(w, start + 9_999, start)).toBe(false);
    expect(windowActive(w, start + 10_000, start)).toBe(true);
    expect(windowActive(w, start + 14_999, start)).toBe(true);
    expect(windowActive(w, start + 15_000, start)).toBe(false);
  });

  it("stableUntil: the window does not change before it, and it is never past the real edge", () => {
    let seed = 5;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const base = T("2022-01-05T00:00:00Z");
    const windows: Window[] = [
      { start: base + 3_600_000, end: base + 5 * 3_600_000, timezone: "UTC" },
      { daily: { fromMs: 20 * 3_600_000, toMs: 22 * 3_600_000 }, timezone: "Asia/Almaty" },
      { daily: { fromMs: 23 * 3_600_000, toMs: 2 * 3_600_000, days: [5] }, timezone: "+05:00" },
      { daily: { fromMs: 0, toMs: 24 * 3_600_000, days: [1, 3] }, timezone: "Europe/Berlin" },
      { intermittent: { onMs: 40 * 60_000, offMs: 17 * 60_000, anchor: base - 7 * 60_000 }, timezone: "UTC" },
      { relative: { afterMs: 90 * 60_000, forMs: 30 * 60_000 }, timezone: "UTC" },
      { start: base, daily: { fromMs: 9 * 3_600_000, toMs: 18 * 3_600_000 }, intermittent: { onMs: 20 * 60_000, offMs: 20 * 60_000, anchor: base }, timezone: "Asia/Almaty" },
    ];
    const STEP = 60_000;
    for (const w of windows) {
      for (let i = 0; i < 20; i++) {
        const t = base + Math.floor(rnd() * 6 * 86_400_000);
        const until = windowStableUntil(w, t, base);
        expect(until).toBeGreaterThan(t);
        const state = windowActive(w, t, base);
        // No change in [t, until): sampled every minute and just before the edge.
        for (let s = t; s < Math.min(until, t + 2 * 86_400_000); s += STEP) expect(windowActive(w, s, base)).toBe(state);
        if (until !== Infinity) expect(windowActive(w, until - 1, base)).toBe(state);
        // The first real change (to the minute) is not before `until`.
        let change = t;
        while (change < t + 8 * 86_400_000 && windowActive(w, change, base) === state) change += STEP;
        if (change < t + 8 * 86_400_000) expect(until).toBeLessThanOrEqual(change);
      }
    }
  });
});
