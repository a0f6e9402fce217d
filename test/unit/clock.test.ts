import { describe, expect, it } from "vitest";
import { LabClock } from "../../src/clock/clock.js";

function fakeTime(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe("LabClock", () => {
  it("real time follows the source", () => {
    const f = fakeTime();
    const c = new LabClock({ source: f.now });
    expect(c.mode).toBe("real");
    f.advance(500);
    expect(c.now()).toBe(1_000_500);
  });
  it("pinned stands still until resumed", () => {
    const f = fakeTime();
    const at = Date.parse("2012-03-15T00:00:00Z");
    const c = new LabClock({ at, source: f.now });
    f.advance(60_000);
    expect(c.now()).toBe(at);
    c.resume();
    f.advance(1000);
    expect(c.now()).toBe(at + 1000);
  });
  it("replays at speed, pauses, resumes, seeks and changes speed", () => {
    const f = fakeTime();
    const from = Date.parse("2014-02-13T10:58:00Z");
    const c = new LabClock({ from, speed: 60, source: f.now });
    f.advance(2000);
    expect(c.now()).toBe(from + 120_000);
    c.pause();
    f.advance(5000);
    expect(c.now()).toBe(from + 120_000);
    c.resume();
    f.advance(1000);
    expect(c.now()).toBe(from + 180_000);
    c.setSpeed(1);
    f.advance(1000);
    expect(c.now()).toBe(from + 181_000);
    const target = Date.parse("2014-02-13T12:30:00Z");
    c.seek(target);
    expect(c.now()).toBe(target);
    f.advance(10);
    expect(c.now()).toBe(target + 10);
    expect(c.state()).toEqual({ labTime: target + 10, speed: 1, paused: false, mode: "replay" });
  });
  it("tells how much real time until a lab instant", () => {
    const f = fakeTime();
    const c = new LabClock({ from: 0, speed: 60, source: f.now });
    expect(c.realDelayUntil(60_000)).toBe(1000);
    c.pause();
    expect(c.realDelayUntil(120_000)).toBe(Infinity);
  });
  it("emits change events and rejects bad input", () => {
    const c = new LabClock({ source: () => 0 });
    const seen: number[] = [];
    c.on("change", (s: { speed: number }) => seen.push(s.speed));
    c.setSpeed(10);
    expect(seen).toEqual([10]);
    expect(() => c.setSpeed(0)).toThrow(/above 0/);
    expect(() => c.setSpeed(1e308)).toThrow(/at most/);
    expect(() => new LabClock({ at: 1, from: 2 })).toThrow(/either/);
  });
});
