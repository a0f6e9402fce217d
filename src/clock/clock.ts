// Lab time: pinned at an instant (--at), replayed from an instant at a speed (--from/--speed),
// or real time. Pause, resume, seek and speed changes at run time. The real-time source is
// injectable so that tests are deterministic.
import { EventEmitter } from "node:events";

export type TimeSource = () => number;

/** The instants a lab clock can hold: those of a JavaScript Date (about ±275,000 years); lab time is clamped to them. */
export const LAB_TIME_MIN = -8.64e15;
export const LAB_TIME_MAX = 8.64e15;
/** The fastest replay: about four months of lab time a second (a year of the record in three seconds). */
export const MAX_SPEED = 1e7;

function checkSpeed(speed: number): void {
  if (typeof speed !== "number" || !(speed > 0) || !Number.isFinite(speed) || speed > MAX_SPEED) {
    throw new RangeError(`speed must be a number above 0 and at most ${MAX_SPEED} (lab seconds per real second), got ${speed}`);
  }
}

/** Throws unless `t` is an instant the clock can hold. */
export function checkInstant(t: number, what = "instant"): void {
  if (typeof t !== "number" || !Number.isFinite(t) || t < LAB_TIME_MIN || t > LAB_TIME_MAX) {
    throw new RangeError(`${what} is outside the dates a lab clock can hold (years -271821 to 275760), got ${t}`);
  }
}

const clamp = (t: number): number => (t < LAB_TIME_MIN ? LAB_TIME_MIN : t > LAB_TIME_MAX ? LAB_TIME_MAX : t);
export type ClockMode = "real" | "pinned" | "replay";

export interface ClockOptions {
  /** Pin lab time at this instant (epoch ms); the clock stands still until resumed. */
  at?: number;
  /** Replay from this instant (epoch ms) at `speed`. */
  from?: number;
  /** Lab seconds per real second (default 1). */
  speed?: number;
  /** Real time in epoch ms (default Date.now). */
  source?: TimeSource;
}

export interface ClockState { labTime: number; speed: number; paused: boolean; mode: ClockMode }

/** Everything needed to rebuild a clock in another process (same machine, same real time). */
export interface ClockSnapshot { mode: ClockMode; startedAt: number; anchorLab: number; anchorReal: number; speed: number; paused: boolean }

export class LabClock extends EventEmitter {
  readonly mode: ClockMode;
  /** Lab time when the lab started, for windows relative to lab start. */
  readonly startedAt: number;
  private readonly source: TimeSource;
  private anchorLab: number;
  private anchorReal: number;
  private speedValue: number;
  private pausedValue: boolean;

  constructor(opts: ClockOptions = {}) {
    super();
    this.source = opts.source ?? Date.now;
    if (opts.at !== undefined && opts.from !== undefined) throw new Error("give either an instant to pin (at) or one to replay from (from), not both");
    const speed = opts.speed ?? 1;
    checkSpeed(speed);
    if (opts.at !== undefined) checkInstant(opts.at, "at");
    if (opts.from !== undefined) checkInstant(opts.from, "from");
    this.anchorReal = this.source();
    this.speedValue = speed;
    if (opts.at !== undefined) {
      this.mode = "pinned";
      this.anchorLab = opts.at;
      this.pausedValue = true;
    } else if (opts.from !== undefined) {
      this.mode = "replay";
      this.anchorLab = opts.from;
      this.pausedValue = false;
    } else {
      this.mode = "real";
      this.anchorLab = this.anchorReal;
      this.pausedValue = false;
    }
    this.startedAt = this.anchorLab;
  }

  /** Current lab time, epoch milliseconds (held within the dates a Date can represent, however long a fast replay runs). */
  now(): number {
    if (this.pausedValue) return this.anchorLab;
    return clamp(this.anchorLab + (this.source() - this.anchorReal) * this.speedValue);
  }

  get speed(): number { return this.speedValue; }
  get paused(): boolean { return this.pausedValue; }

  state(): ClockState {
    return { labTime: this.now(), speed: this.speedValue, paused: this.pausedValue, mode: this.mode };
  }

  pause(): void {
    if (this.pausedValue) return;
    this.rebase();
    this.pausedValue = true;
    this.emit("change", this.state());
  }

  resume(): void {
    if (!this.pausedValue) return;
    this.anchorReal = this.source();
    this.pausedValue = false;
    this.emit("change", this.state());
  }

  seek(labTime: number): void {
    checkInstant(labTime, "seek");
    this.anchorLab = labTime;
    this.anchorReal = this.source();
    this.emit("change", this.state());
  }

  setSpeed(speed: number): void {
    checkSpeed(speed);
    this.rebase();
    this.speedValue = speed;
    this.emit("change", this.state());
  }

  snapshot(): ClockSnapshot {
    return { mode: this.mode, startedAt: this.startedAt, anchorLab: this.anchorLab, anchorReal: this.anchorReal, speed: this.speedValue, paused: this.pausedValue };
  }

  /** A clock that follows `snap` (a helper process's copy of the lab's clock). */
  static fromSnapshot(snap: ClockSnapshot): LabClock {
    const c = new LabClock(snap.mode === "pinned" ? { at: snap.startedAt } : snap.mode === "replay" ? { from: snap.startedAt } : {});
    Object.assign(c, { startedAt: snap.startedAt });
    c.restore(snap);
    return c;
  }

  /** Takes over the anchors of `snap` (helper processes, when the lab's clock changes). */
  restore(snap: ClockSnapshot): void {
    this.anchorLab = snap.anchorLab;
    this.anchorReal = snap.anchorReal;
    this.speedValue = snap.speed;
    this.pausedValue = snap.paused;
  }

  /** Real milliseconds until lab time reaches `labTime` (Infinity when paused or already past). */
  realDelayUntil(labTime: number): number {
    const now = this.now();
    if (labTime <= now) return 0;
    if (this.pausedValue) return Infinity;
    return (labTime - now) / this.speedValue;
  }

  private rebase(): void {
    const now = this.now();
    this.anchorReal = this.source();
    this.anchorLab = now;
  }
}
