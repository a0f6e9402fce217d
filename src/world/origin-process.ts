// The world's origin, in two places. A process of its own answers connections made to it
// (per-request HTTP forwarding, flows the interceptor splices, real connects in transparent
// mode, the world namespace's listener); serving and intercepting then use two cores. Flows
// the interceptor has judged and allowed are handed to an in-lab instance instead, with the
// bytes already read: the interceptor leaves the data path, as a censor does once it has
// judged, and no second TCP connection or IPC round trip is paid per flow. (Passing the fd
// to the process was measured slower: Node sends one handle at a time and waits for an
// acknowledgement; see docs/ARCHITECTURE.md, "Where allowed flows go".)
import { fork, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../paths.js";
import type { Pki } from "../pki/pki.js";
import { Origin, type OriginStats } from "./origin.js";
import type { ProxyHeader } from "./proxy-header.js";
import type { World } from "./world.js";
import { unmap } from "../util/address.js";

const sum = (a: OriginStats, b: OriginStats): OriginStats =>
  Object.fromEntries(Object.keys(a).map((k) => [k, a[k as keyof OriginStats] + b[k as keyof OriginStats]])) as unknown as OriginStats;

const SCRIPT = join(PACKAGE_ROOT, "dist", "world", "origin-worker.js");
/** Pings the process this often; no answer for HUNG_AFTER_MS and it is killed (and started again). */
const HEARTBEAT_MS = 1000;
const HUNG_AFTER_MS = 3000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;

export class OriginProcess {
  /** The process's counters as last reported (every 100 ms). */
  private remote: OriginStats = { connections: 0, https: 0, http: 0, echo: 0, h2: 0, noSni: 0, badSni: 0, tlsErrors: 0, badRequests: 0, badProxyHeaders: 0, sniffTimeouts: 0 };
  /** Flows handed over by the interceptor. */
  adopted = 0;
  private readonly local: Origin;
  /** What the lab's parts write in their PROXY lines to the process's loopback port (nothing else is served there). */
  readonly secret = randomBytes(16).toString("hex");
  private child: ChildProcess | undefined;
  private addr: { host: string; port: number } | undefined;
  private readonly waiting: ((s: OriginStats) => void)[] = [];

  /**
   * `wrap` runs the process under a command (transparent mode: `ip netns exec chokepoint-world`,
   * the IPC channel passes through); `transparent` makes it a TPROXY listener there.
   */
  constructor(private readonly world: World, private readonly pki: Pki, private readonly opts: { wrap?: string[]; transparent?: boolean } = {}) {
    this.local = new Origin(world, pki);
  }

  /** Both instances' counters (the process's as last reported); `statsNow()` asks for current ones. */
  get stats(): OriginStats {
    return sum(this.remote, this.local.stats);
  }

  /** The process's pid (while it runs). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get address(): { host: string; port: number } {
    if (!this.addr) throw new Error("origin is not listening");
    return this.addr;
  }

  /** Restarts after the process died or hung (the supervisor's count), and the last reason. */
  restarts = 0;
  private lastBeat = Date.now();
  private closing = false;
  private listenArgs: { host: string; port: number } | undefined;
  private lastPong = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private backoffMs = BACKOFF_MIN_MS;
  /** Told when the process died or hung, and when it is back (the lab records both as events). */
  onHealth?: (what: "exited" | "hung" | "restarted" | "restart-failed", detail: Record<string, unknown>) => void;

  async listen(host = "127.0.0.1", port = 0): Promise<void> {
    this.listenArgs = { host, port };
    await this.spawnChild(host, port);
    // Supervision: a process that stops answering pings (SIGSTOP, a busy loop) is killed; one
    // that exits is started again, with backoff; flows that need it meanwhile fail at once
    // (its port refuses) instead of hanging.
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  private beat(): void {
    const c = this.child;
    const now = Date.now();
    // A late beat means this process was the one stalled (a synchronous key generation, a
    // loaded machine): the child's pongs could not be read, so it is not judged this round.
    const late = now - this.lastBeat > 2 * HEARTBEAT_MS;
    this.lastBeat = now;
    if (late) this.lastPong = now;
    if (!c?.connected) return;
    if (now - this.lastPong > HUNG_AFTER_MS) {
      this.onHealth?.("hung", { pid: c.pid, silentMs: Date.now() - this.lastPong });
      c.kill("SIGKILL");
      return;
    }
    c.send({ type: "ping" });
  }

  private supervise(child: ChildProcess): void {
    child.once("exit", (code, signal) => {
      if (this.closing || this.child !== child) return;
      this.child = undefined;
      this.onHealth?.("exited", { code, signal });
      const wait = this.backoffMs;
      this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
      setTimeout(() => {
        if (this.closing || !this.listenArgs) return;
        // The same port if it is free (flows keep their address), else a new one.
        const { host } = this.listenArgs;
        this.spawnChild(host, this.addr?.port ?? this.listenArgs.port)
          .catch(() => this.spawnChild(host, 0))
          .then(() => {
            this.restarts++;
            this.onHealth?.("restarted", { address: this.addr, restarts: this.restarts });
            setTimeout(() => { this.backoffMs = BACKOFF_MIN_MS; }, BACKOFF_MAX_MS).unref();
          }, (err: Error) => this.onHealth?.("restart-failed", { error: err.message }));
      }, wait).unref();
    });
  }

  private async spawnChild(host: string, port: number): Promise<void> {
    const wrap = this.opts.wrap ?? [];
    const child = wrap.length
      ? spawn(wrap[0]!, [...wrap.slice(1), process.execPath, SCRIPT], { stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" })
      : fork(SCRIPT, [], { stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" });
    this.child = child;
    // A channel closed under a send (the process died) is the supervisor's business, never an uncaught error.
    child.on("error", () => undefined);
    this.addr = await new Promise((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`world origin exited (${code})`)));
      child.on("message", (m: { type: string; address?: { host: string; port: number }; message?: string; stats?: OriginStats }) => {
        if (m.type === "pong") this.lastPong = Date.now();
        else if (m.type === "listening") resolve(m.address!);
        else if (m.type === "error") reject(new Error(`world origin: ${m.message}`));
        else if (m.type === "stats" && m.stats) {
          this.remote = m.stats;
          for (const w of this.waiting.splice(0)) w(this.stats);
        }
      });
      child.send({ type: "init", world: { ...this.world.spec, mode: this.world.mode }, confdir: this.pki.dir, host, port, ...(this.opts.transparent ? { transparent: true } : {}), secret: this.secret });
    });
    this.lastPong = Date.now();
    this.supervise(child);
    // Once up, the origin does not keep the lab's process alive by itself (its listeners do).
    child.unref();
    (child as unknown as { channel?: { unref(): void } }).channel?.unref();
  }

  /** The current counters of both instances. */
  statsNow(): Promise<OriginStats> {
    if (!this.child?.connected) return Promise.resolve(this.stats);
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.child!.send({ type: "stats" });
    });
  }

  /** Takes over a client connection the interceptor judged and allowed (in the lab's process); a FlowSink (runtime/flows.ts). */
  adopt(socket: Socket, ends: { client: { ip: string; port: number }; dst: { ip: string; port: number } }, first: Buffer): boolean {
    this.adopted++;
    const header: ProxyHeader = { src: unmap(ends.client.ip), dst: ends.dst.ip, srcPort: ends.client.port, dstPort: ends.dst.port };
    this.local.adopt(socket, header, first);
    return true;
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.heartbeat);
    await this.local.close();
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
