// The world's origin in a process of its own: serving the world and intercepting the flows
// to it then use two cores, and the interceptor can hand an allowed flow's socket over (with
// the bytes it already read) and leave the data path, as a censor does once it has judged.
import { fork, spawn, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../paths.js";
import type { OriginStats } from "./origin.js";
import type { ProxyHeader } from "./proxy-header.js";
import type { World } from "./world.js";

const SCRIPT = join(PACKAGE_ROOT, "dist", "world", "origin-worker.js");

export class OriginProcess {
  /** The counters as last reported (every 100 ms); `statsNow()` asks for current ones. */
  stats: OriginStats = { connections: 0, https: 0, http: 0, echo: 0, h2: 0, noSni: 0, badSni: 0, tlsErrors: 0, badRequests: 0, badProxyHeaders: 0, sniffTimeouts: 0 };
  /** Flows handed over by the interceptor. */
  adopted = 0;
  private inFlight = 0;
  private child: ChildProcess | undefined;
  private addr: { host: string; port: number } | undefined;
  private readonly waiting: ((s: OriginStats) => void)[] = [];

  /**
   * `wrap` runs the process under a command (transparent mode: `ip netns exec chokepoint-world`,
   * the IPC channel passes through); `transparent` makes it a TPROXY listener there.
   */
  constructor(private readonly world: World, private readonly confdir: string, private readonly opts: { wrap?: string[]; transparent?: boolean } = {}) {}

  get address(): { host: string; port: number } {
    if (!this.addr) throw new Error("origin is not listening");
    return this.addr;
  }

  async listen(host = "127.0.0.1", port = 0): Promise<void> {
    const wrap = this.opts.wrap ?? [];
    const child = wrap.length
      ? spawn(wrap[0]!, [...wrap.slice(1), process.execPath, SCRIPT], { stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" })
      : fork(SCRIPT, [], { stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" });
    this.child = child;
    this.addr = await new Promise((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`world origin exited (${code})`)));
      child.on("message", (m: { type: string; address?: { host: string; port: number }; message?: string; stats?: OriginStats }) => {
        if (m.type === "listening") resolve(m.address!);
        else if (m.type === "error") reject(new Error(`world origin: ${m.message}`));
        else if (m.type === "stats" && m.stats) {
          this.stats = m.stats;
          for (const w of this.waiting.splice(0)) w(m.stats);
        }
      });
      child.send({ type: "init", world: { ...this.world.spec, mode: this.world.mode }, confdir: this.confdir, host, port, ...(this.opts.transparent ? { transparent: true } : {}) });
    });
    // Once up, the origin does not keep the lab's process alive by itself (its listeners do).
    child.unref();
    (child as unknown as { channel?: { unref(): void } }).channel?.unref();
  }

  /** The current counters. */
  statsNow(): Promise<OriginStats> {
    if (!this.child?.connected) return Promise.resolve(this.stats);
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.child!.send({ type: "stats" });
    });
  }

  /**
   * Hands a client connection over (the lab's copy of the socket is closed); false if it
   * cannot. Node sends one socket handle at a time and waits for the other side's
   * acknowledgement, so while one is on its way the caller splices instead: a storm of new
   * connections is not queued behind IPC round trips, and long flows still leave the lab.
   */
  adopt(socket: Socket, header: ProxyHeader, first: Buffer): boolean {
    if (!this.child?.connected || this.inFlight > 0) return false;
    this.adopted++;
    this.inFlight++;
    this.child.send({ type: "adopt", header, first }, socket, { keepOpen: false }, () => { this.inFlight--; });
    return true;
  }

  async close(): Promise<void> {
    const c = this.child;
    if (!c) return;
    this.child = undefined;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { c.kill("SIGKILL"); resolve(); }, 2000);
      c.once("exit", () => { clearTimeout(timer); resolve(); });
      if (c.connected) c.send({ type: "close" });
      else c.kill("SIGTERM");
    });
  }
}
