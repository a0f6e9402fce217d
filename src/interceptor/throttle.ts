// Throttling a flow: a token bucket (bytes/s), an added delay per chunk, stalls that stand in
// for loss (TCP retransmits what is lost, so the client sees a pause, not missing bytes), and
// an onset after N bytes (trigger-then-throttle).
import { Transform, type TransformCallback } from "node:stream";
import type { Action } from "../profile/model.js";

type Throttle = Extract<Action, { type: "throttle" }>;

/** How long a lost segment stalls the flow (a typical TCP retransmission timeout). */
const LOSS_STALL_MS = 200;

export class ThrottleStream extends Transform {
  private passed = 0;
  private tokens: number;
  private last = Date.now();
  private readonly burst: number;

  constructor(private readonly t: Throttle, private readonly random: () => number = Math.random) {
    super({ highWaterMark: 16 * 1024 });
    // A bucket of a tenth of a second of traffic (at least one 1 KB chunk) keeps the rate smooth.
    this.burst = t.rate ? Math.max(1024, t.rate / 10) : Infinity;
    this.tokens = this.burst;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let offset = 0;
    // Bytes before the onset pass untouched.
    if (this.t.afterBytes !== undefined && this.passed < this.t.afterBytes) {
      const free = Math.min(chunk.length, this.t.afterBytes - this.passed);
      this.push(chunk.subarray(0, free));
      this.passed += free;
      offset = free;
      if (offset === chunk.length) return done();
    }
    const rest = chunk.subarray(offset);
    let extra = this.t.delayMs ?? 0;
    if (this.t.loss && this.random() < this.t.loss) extra += LOSS_STALL_MS;
    this.sendPaced(rest, extra, done);
  }

  /** Sends `data` in pieces as the bucket allows. */
  private sendPaced(data: Buffer, extraDelay: number, done: TransformCallback): void {
    if (!this.t.rate) {
      setTimeout(() => { this.push(data); this.passed += data.length; done(); }, extraDelay);
      return;
    }
    const step = (): void => {
      if (data.length === 0) return done();
      const now = Date.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.t.rate!);
      this.last = now;
      if (this.tokens < 1) {
        setTimeout(step, Math.max(1, Math.ceil(((1 - this.tokens) / this.t.rate!) * 1000)));
        return;
      }
      const n = Math.min(data.length, Math.floor(this.tokens));
      this.tokens -= n;
      this.push(data.subarray(0, n));
      this.passed += n;
      data = data.subarray(n);
      if (data.length) setTimeout(step, Math.max(1, Math.ceil((Math.min(data.length, this.burst) / this.t.rate!) * 1000)));
      else done();
    };
    if (extraDelay > 0) setTimeout(step, extraDelay);
    else step();
  }
}
