// The lab's handle on an origin running in a worker thread: its address and its counters
// (shared memory, read without waiting).
import { Worker } from "node:worker_threads";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../paths.js";
import { ORIGIN_STAT_NAMES, sharedStats, type OriginStats } from "./origin.js";
import type { World } from "./world.js";

const SCRIPT = join(PACKAGE_ROOT, "dist", "world", "origin-worker.js");

export class OriginThread {
  readonly stats: OriginStats;
  private readonly buffer = new SharedArrayBuffer(4 * ORIGIN_STAT_NAMES.length);
  private worker: Worker | undefined;
  private addr: { host: string; port: number } | undefined;

  constructor(private readonly world: World, private readonly confdir: string) {
    this.stats = sharedStats(this.buffer);
  }

  get address(): { host: string; port: number } {
    if (!this.addr) throw new Error("origin is not listening");
    return this.addr;
  }

  async listen(host = "127.0.0.1", port = 0): Promise<void> {
    this.worker = new Worker(SCRIPT, {
      workerData: { world: { ...this.world.spec, mode: this.world.mode }, confdir: this.confdir, host, port, stats: this.buffer },
    });
    this.worker.unref();
    this.addr = await new Promise((resolve, reject) => {
      this.worker!.once("error", reject);
      this.worker!.on("message", (m: { type: string; address?: { host: string; port: number }; message?: string }) => {
        if (m.type === "listening") resolve(m.address!);
        else if (m.type === "error") reject(new Error(`world origin: ${m.message}`));
      });
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    this.worker = undefined;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => void w.terminate().then(() => resolve()), 2000);
      w.on("message", (m: { type: string }) => {
        if (m.type === "closed") { clearTimeout(timer); void w.terminate().then(() => resolve()); }
      });
      w.postMessage({ type: "close" });
    });
  }
}
