// A resolver helper process (--dns-workers N): it loads the same profiles, compiles its own
// policy, and answers UDP queries on sockets the lab hands it (the kernel spreads datagrams
// over the processes that read one socket). Its events go back to the lab in batches, so the
// lab's event log and counters stay the one record of every decision.
import type { Socket as UdpSocket } from "node:dgram";
import { LabClock, type ClockSnapshot } from "../clock/clock.js";
import { EventLog } from "../events/log.js";
import type { LabEvent } from "../events/types.js";
import { compilePolicy } from "../policy/engine.js";
import { Pki } from "../pki/pki.js";
import { selectProfiles } from "../profile/select.js";
import { buildWorld } from "../world/build.js";
import type { LabContext } from "../runtime/context.js";
import { Resolver, type ResolverStats } from "./resolver.js";

export interface WorkerInit {
  type: "init";
  refs: string[];
  country?: string;
  at?: number;
  variant?: string;
  seedDirs?: string[];
  world: "lab" | "internet";
  confdir: string;
  clock: ClockSnapshot;
  /** Whether the lab reads events (else the helper only counts). */
  wanted: boolean;
}
export type ToWorker = WorkerInit | { type: "udp"; network: string } | { type: "clock"; clock: ClockSnapshot } | { type: "wanted"; wanted: boolean } | { type: "stop" };
/** Decisions only counted (nobody read events): action -> network -> count. */
export type CountDelta = Record<string, Record<string, number>>;
export type FromWorker =
  | { type: "ready" }
  | { type: "events"; events: LabEvent[]; counts: CountDelta; stats: Partial<ResolverStats> }
  | { type: "error"; message: string }
  | { type: "stopped"; events: LabEvent[]; counts: CountDelta; stats: Partial<ResolverStats> };

const BATCH_MS = 20;
const BATCH_MAX = 512;

if (process.send) {
  // A terminal's Ctrl-C reaches the whole process group: the lab decides when this process stops (over IPC).
  process.on("SIGINT", () => undefined);
  let ctx: LabContext | undefined;
  let resolver: Resolver | undefined;
  const sockets: UdpSocket[] = [];
  let batch: LabEvent[] = [];
  let tally: CountDelta = {};
  let events: EventLog | undefined;
  let lastStats: ResolverStats | undefined;
  let timer: NodeJS.Timeout | undefined;
  const send = (m: FromWorker): void => void process.send!(m);
  const statsDelta = (): Partial<ResolverStats> => {
    const now = { ...resolver!.stats };
    const d: Partial<ResolverStats> = {};
    for (const k of Object.keys(now) as (keyof ResolverStats)[]) {
      const v = now[k] - (lastStats?.[k] ?? 0);
      if (v) d[k] = v;
    }
    lastStats = now;
    return d;
  };
  /** Counters of decisions that were only counted since the last batch. */
  const countDelta = (): CountDelta => {
    const d = tally;
    tally = {};
    return d;
  };
  const schedule = (): void => {
    if (!timer) timer = setTimeout(flush, BATCH_MS);
  };
  const flush = (): void => {
    if (timer) { clearTimeout(timer); timer = undefined; }
    const counts = countDelta();
    if (!batch.length && !Object.keys(counts).length) return;
    send({ type: "events", events: batch, counts, stats: statsDelta() });
    batch = [];
  };
  process.on("message", (m: ToWorker, handle: unknown) => {
    try {
      if (m.type === "init") {
        const { profiles } = selectProfiles({ refs: m.refs, ...(m.country ? { country: m.country } : {}), ...(m.at !== undefined ? { at: m.at } : {}), ...(m.variant ? { variant: m.variant } : {}), ...(m.seedDirs ? { seedDirs: m.seedDirs } : {}) });
        const clock = LabClock.fromSnapshot(m.clock);
        events = new EventLog();
        // Built events come back in batches; when the lab reads none, the helper only counts
        // (as the lab itself does), and the counts come back instead.
        events.subscribe((e) => {
          batch.push(e);
          if (batch.length >= BATCH_MAX) flush();
          else schedule();
        });
        events.forceWanted = m.wanted;
        events.count = (action: string, network = "-"): void => {
          const byNet = (tally[action] ??= {});
          byNet[network] = (byNet[network] ?? 0) + 1;
          schedule();
        };
        ctx = { policy: compilePolicy(profiles, { labStart: clock.startedAt }), clock, world: buildWorld(profiles, { mode: m.world }), pki: new Pki(m.confdir), events: events! };
        resolver = new Resolver(ctx);
        send({ type: "ready" });
      } else if (m.type === "udp") {
        const socket = handle as UdpSocket;
        sockets.push(socket);
        socket.on("error", () => undefined);
        socket.on("message", (msg, rinfo) => {
          const out = resolver!.handle(msg, { network: m.network, client: `${rinfo.address}:${rinfo.port}`, transport: "udp" });
          if (out instanceof Promise) void out.then((b) => b && socket.send(b, rinfo.port, rinfo.address));
          else if (out) socket.send(out, rinfo.port, rinfo.address);
        });
      } else if (m.type === "clock") {
        ctx?.clock.restore(m.clock);
      } else if (m.type === "wanted") {
        if (events) events.forceWanted = m.wanted;
      } else if (m.type === "stop") {
        for (const s of sockets) s.close();
        if (timer) clearTimeout(timer);
        send({ type: "stopped", events: batch, counts: countDelta(), stats: resolver ? statsDelta() : {} });
        batch = [];
        process.disconnect();
      }
    } catch (err) {
      send({ type: "error", message: err instanceof Error ? err.message : String(err) });
    }
  });
  process.on("disconnect", () => process.exit(0));
}
