// The lab's side of resolver helper processes (--dns-workers N): forks them, hands them the
// UDP sockets, keeps their clocks in step, and records their events in the lab's log.
import { fork, type ChildProcess } from "node:child_process";
import type { Socket as UdpSocket } from "node:dgram";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../paths.js";
import type { LabClock } from "../clock/clock.js";
import type { EventLog } from "../events/log.js";
import type { Resolver, ResolverStats } from "./resolver.js";
import type { LabEvent } from "../events/types.js";
import type { CountDelta, FromWorker, ToWorker, WorkerInit } from "./worker.js";

/** The compiled helper (also when the lab itself runs from the TypeScript sources, as in tests). */
const WORKER = join(PACKAGE_ROOT, "dist", "resolver", "worker.js");

export class ResolverWorkers {
  private readonly children: ChildProcess[] = [];
  /** Decisions made by the helpers (the rest were the lab's own). */
  handled = 0;
  private readonly onClock: () => void;
  private wantedTimer: NodeJS.Timeout | undefined;
  private lastWanted = false;

  constructor(private readonly resolver: Resolver, private readonly events: EventLog, private readonly clock: LabClock) {
    this.onClock = (): void => this.broadcast({ type: "clock", clock: this.clock.snapshot() });
  }

  /** The helpers' pids (tests, status). */
  get pids(): number[] {
    return this.children.map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  private init: Omit<WorkerInit, "type" | "clock" | "wanted"> | undefined;
  private readonly shared: { socket: UdpSocket; network: string }[] = [];
  private stopping = false;
  /** Helpers that died and were started again (the lab's own process answered meanwhile: the socket is shared). */
  restarts = 0;
  /** Told when a helper died and when its replacement is ready (the lab records both). */
  onHealth?: (what: "exited" | "restarted" | "restart-failed", detail: Record<string, unknown>) => void;

  /** Forks `n` helpers and waits until each has loaded the profiles. */
  async start(n: number, init: Omit<WorkerInit, "type" | "clock" | "wanted">): Promise<void> {
    this.init = init;
    this.lastWanted = this.events.wanted;
    await Promise.all(Array.from({ length: n }, () => this.spawn()));
    this.clock.on("change", this.onClock);
    // Helpers build events only while the lab has a reader for them (a file, a subscriber).
    this.wantedTimer = setInterval(() => {
      const w = this.events.wanted;
      if (w !== this.lastWanted) {
        this.lastWanted = w;
        this.broadcast({ type: "wanted", wanted: w });
      }
    }, 50);
    this.wantedTimer.unref();
  }

  /** One helper, supervised: if it dies, it is reported and replaced (after 1 s). */
  private spawn(): Promise<void> {
    const child = fork(WORKER, [], { stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" });
    this.children.push(child);
    child.on("error", () => undefined); // a send on a closed channel at shutdown
    const ready = new Promise<void>((resolve, reject) => {
      child.on("message", (m: FromWorker) => {
        if (m.type === "ready") resolve();
        else if (m.type === "error") reject(new Error(`resolver worker: ${m.message}`));
        else if (m.type === "events") this.take(m.events, m.counts, m.stats);
      });
      child.once("exit", (code, signal) => {
        reject(new Error(`resolver worker exited (${code}) while starting`));
        const i = this.children.indexOf(child);
        if (i >= 0) this.children.splice(i, 1);
        if (this.stopping) return;
        this.onHealth?.("exited", { code, signal });
        setTimeout(() => {
          if (this.stopping) return;
          this.spawn().then(() => {
            this.restarts++;
            this.onHealth?.("restarted", { restarts: this.restarts });
          }, (err: Error) => this.onHealth?.("restart-failed", { error: err.message }));
        }, 1000).unref();
      });
    });
    child.send({ type: "init", ...this.init!, clock: this.clock.snapshot(), wanted: this.lastWanted } satisfies ToWorker);
    // A replacement reads the same sockets as the rest.
    return ready.then(() => { for (const s of this.shared) child.send({ type: "udp", network: s.network } satisfies ToWorker, s.socket as unknown as import("node:net").Socket); });
  }

  /** Lets every helper read `socket` too (the same kernel socket, shared). */
  share(socket: UdpSocket, network: string): void {
    this.shared.push({ socket, network });
    for (const c of this.children) c.send({ type: "udp", network } satisfies ToWorker, socket as unknown as import("node:net").Socket);
  }

  private take(events: LabEvent[], counts: CountDelta, stats: Partial<ResolverStats>): void {
    this.handled += events.length;
    for (const e of events) this.events.record(e);
    for (const [action, byNet] of Object.entries(counts)) {
      for (const [net, n] of Object.entries(byNet)) {
        this.handled += n;
        this.events.count(action, net, n);
      }
    }
    for (const [k, v] of Object.entries(stats)) this.resolver.stats[k as keyof ResolverStats] += v as number;
  }

  private broadcast(m: ToWorker): void {
    for (const c of this.children) if (c.connected) c.send(m);
  }

  /** Stops the helpers, recording their last events first. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.clock.off("change", this.onClock);
    if (this.wantedTimer) clearInterval(this.wantedTimer);
    await Promise.all(this.children.map((c) => new Promise<void>((resolve) => {
      if (!c.connected) return resolve();
      const timer = setTimeout(() => { c.kill("SIGKILL"); resolve(); }, 2000);
      c.on("message", (m: FromWorker) => {
        if (m.type === "stopped") {
          this.take(m.events, m.counts, m.stats);
          clearTimeout(timer);
          resolve();
        }
      });
      c.send({ type: "stop" } satisfies ToWorker);
    })));
  }
}
