// Lab time: pinned at an instant (--at), replayed from an instant at a speed (--from/--speed),
// or real time. Pause, resume, seek and speed changes at run time. The real-time source is
// injectable so that tests are deterministic.
import { EventEmitter } from "node:events";

export type TimeSource = () => number;
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
    if (!(speed > 0) || !Number.isFinite(speed)) throw new Error(`speed must be a positive number, got ${speed}`);
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

  /** Current lab time, epoch milliseconds. */
  now(): number {
    if (this.pausedValue) return this.anchorLab;
    return this.anchorLab + (this.source() - this.anchorReal) * this.speedValue;
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
    if (!Number.isFinite(labTime)) throw new Error("seek needs a valid instant");
    this.anchorLab = labTime;
    this.anchorReal = this.source();
    this.emit("change", this.state());
  }

  setSpeed(speed: number): void {
    if (!(speed > 0) || !Number.isFinite(speed)) throw new Error(`speed must be a positive number, got ${speed}`);
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
