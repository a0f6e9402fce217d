// The event log: counts every decision, hands it to subscribers (live view, library users)
// and appends it to a JSON Lines file. File writes are batched (every 100 ms or 512 events)
// and flushed synchronously on stop and on process exit, so a SIGINT/SIGTERM loses nothing.
import { closeSync, fstatSync, mkdirSync, openSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import type { EventInput, LabEvent } from "./types.js";
import { unmap } from "../util/address.js";

const BATCH = 512;
const FLUSH_MS = 100;
const MAX_QUEUED = 10_000;
/** Events kept for late readers (the live view fills its list from them on load). */
const RECENT = 200;

export type Counters = Record<string, Record<string, number>>;

/** Clients tagged at once (POST /v1/tag). */
export const MAX_CLIENT_TAGS = 4096;

export class EventLog {
  /** Decisions per action, then per network. */
  counters: Counters = {};
  total = 0;
  /** Events a slow async-iterator subscriber did not take in time. */
  dropped = 0;
  private fd: number | undefined;
  private pending: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly subscribers = new Set<(e: LabEvent, line: () => string) => void>();
  private readonly closers = new Set<() => void>();
  private closed = false;
  private readonly onExit = (): void => this.flushSync();

  /** Bytes in the current events file (for rotation). */
  private size = 0;
  /** Times the events file was rotated (FILE -> FILE.1). */
  rotations = 0;
  private readonly maxBytes: number | undefined;

  /**
   * `maxBytes`: rotate the file when it would grow past this (FILE becomes FILE.1, replacing an
   * older FILE.1, and a new FILE starts), so a long run keeps at most twice this on disk.
   */
  constructor(readonly file?: string, opts: { maxBytes?: number } = {}) {
    this.maxBytes = opts.maxBytes;
    if (opts.maxBytes !== undefined && !(opts.maxBytes >= 4096)) throw new Error(`the events file's size limit must be at least 4096 bytes, got ${opts.maxBytes}`);
    if (file) {
      mkdirSync(dirname(file), { recursive: true });
      this.fd = openSync(file, "a");
      this.size = fstatSync(this.fd).size;
      process.on("exit", this.onExit);
    }
  }

  /** Set by a helper process whose lab wants every event (the helper's own log has no reader). */
  forceWanted = false;

  /** Whether anyone reads events (a file or a subscriber); if not, components may just count(). */
  get wanted(): boolean {
    return this.forceWanted || this.fd !== undefined || this.subscribers.size > 0;
  }

  /** Counts a decision without building its event (nobody reads events right now). */
  count(action: string, network = "-", n = 1): void {
    this.total += n;
    const byNet = (this.counters[action] ??= {});
    byNet[network] = (byNet[network] ?? 0) + n;
  }

  /** The last events (at most RECENT), for a live view that opens after they happened. */
  private readonly ring: LabEvent[] = [];
  private ringAt = 0;

  /** Up to `n` of the latest events, oldest first. */
  recent(n = RECENT): LabEvent[] {
    const all = this.ring.length < RECENT ? this.ring : [...this.ring.slice(this.ringAt), ...this.ring.slice(0, this.ringAt)];
    return all.slice(Math.max(0, all.length - n));
  }

  /** Measurement ids by client address (POST /v1/tag): a probe that cannot tag its flows itself, in transparent mode, names its next flows so. */
  private readonly clientTags = new Map<string, { tag: string; until: number }>();

  /**
   * Tags every event about `client` (an address) from now on with `tag`, for `ttlMs` or until
   * it is tagged again or cleared (tag undefined). At most MAX_CLIENT_TAGS clients at once.
   */
  tagClient(client: string, tag: string | undefined, ttlMs = 600_000): void {
    if (tag === undefined) { this.clientTags.delete(client); return; }
    if (!this.clientTags.has(client) && this.clientTags.size >= MAX_CLIENT_TAGS) {
      const now = Date.now();
      for (const [k, v] of this.clientTags) if (v.until <= now) this.clientTags.delete(k);
      if (this.clientTags.size >= MAX_CLIENT_TAGS) throw new RangeError(`${MAX_CLIENT_TAGS} clients are tagged already; clear some (tag null)`);
    }
    this.clientTags.set(client, { tag, until: Date.now() + ttlMs });
  }

  /** The tag of a client ("ip:port", "[ip6]:port" or an address), if one is set and current. */
  private clientTag(client: string | undefined): string | undefined {
    if (!client) return undefined;
    // Events name clients "ip:port" (the address unbracketed, v6 too) or "[ip6]:port".
    const ip = unmap(client.startsWith("[") ? client.slice(1, client.indexOf("]")) : client.includes(":") ? client.slice(0, client.lastIndexOf(":")) : client);
    const t = this.clientTags.get(ip);
    if (!t) return undefined;
    if (t.until > Date.now()) return t.tag;
    this.clientTags.delete(ip);
    return undefined;
  }

  record(input: EventInput): LabEvent {
    // One fixed shape (fast to build; undefined fields are left out of the JSON line).
    const event: LabEvent = {
      v: 1,
      ts: wallIso.format(Date.now()),
      labTime: typeof input.labTime === "number" ? labIso.format(input.labTime) : input.labTime,
      component: input.component,
      network: input.network,
      client: input.client,
      flow: input.flow,
      tag: input.tag ?? (this.clientTags.size ? this.clientTag(input.client) : undefined),
      observation: input.observation,
      action: input.action,
      rule: input.rule,
      profile: input.profile,
      seed: input.seed,
      detail: input.detail,
    } as LabEvent;
    this.total++;
    if (this.ring.length < RECENT) this.ring.push(event);
    else { this.ring[this.ringAt] = event; this.ringAt = (this.ringAt + 1) % RECENT; }
    const net = event.network ?? "-";
    const byNet = (this.counters[event.action] ??= {});
    byNet[net] = (byNet[net] ?? 0) + 1;
    // The JSON line, made once for the file and every subscriber that wants it (the SSE stream).
    let text: string | undefined;
    const line = (): string => (text ??= JSON.stringify(event, replacer));
    if (this.fd !== undefined && !this.closed) {
      this.pending.push(line());
      if (this.pending.length >= BATCH) this.flushSync();
      else if (!this.timer) this.timer = setTimeout(() => this.flushSync(), FLUSH_MS).unref();
    }
    for (const fn of this.subscribers) {
      try {
        fn(event, line);
      } catch {
        // A subscriber's failure must not stop the lab or the log.
      }
    }
    return event;
  }

  /** Calls `fn` with every event from now on, and its JSON line (made at most once) on demand. */
  subscribe(fn: (e: LabEvent, line: () => string) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  /** Every event recorded from now on, until the log is closed. */
  [Symbol.asyncIterator](): AsyncIterableIterator<LabEvent> {
    const queue: LabEvent[] = [];
    let wake: (() => void) | undefined;
    let done = this.closed;
    const unsubscribe = this.subscribe((e) => {
      if (queue.length >= MAX_QUEUED) this.dropped++;
      else queue.push(e);
      wake?.();
    });
    const finish = (): void => { done = true; wake?.(); };
    this.closers.add(finish);
    const cleanup = (): void => { unsubscribe(); this.closers.delete(finish); done = true; };
    const it: AsyncIterableIterator<LabEvent> = {
      next: async () => {
        while (queue.length === 0 && !done) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        if (queue.length) return { value: queue.shift()!, done: false };
        cleanup();
        return { value: undefined, done: true };
      },
      return: async () => {
        cleanup();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  resetCounters(): void {
    this.counters = {};
    this.total = 0;
  }

  flushSync(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    if (this.fd === undefined || this.pending.length === 0) return;
    const text = this.pending.join("\n") + "\n";
    this.pending = [];
    const buf = Buffer.from(text);
    if (this.maxBytes !== undefined && this.size > 0 && this.size + buf.length > this.maxBytes) this.rotate();
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd!, buf, off);
    this.size += buf.length;
  }

  /** FILE -> FILE.1 (whole lines only: rotation happens between batches), and a fresh FILE. */
  private rotate(): void {
    closeSync(this.fd!);
    renameSync(this.file!, `${this.file}.1`);
    this.fd = openSync(this.file!, "a");
    this.size = 0;
    this.rotations++;
  }

  close(): void {
    if (this.closed) return;
    this.flushSync();
    this.closed = true;
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
      process.off("exit", this.onExit);
    }
    for (const c of [...this.closers]) c();
    this.subscribers.clear();
  }
}

/** ISO strings, formatted once per millisecond (a busy lab records many events in each). */
class IsoCache {
  private ms = NaN;
  private text = "";
  format(ms: number): string {
    if (ms !== this.ms) {
      this.ms = ms;
      // Any number a caller hands in: clamped to the dates a Date holds, NaN as the epoch.
      const t = Number.isNaN(ms) ? 0 : Math.min(8.64e15, Math.max(-8.64e15, ms));
      this.text = new Date(t).toISOString();
    }
    return this.text;
  }
}
const wallIso = new IsoCache();
const labIso = new IsoCache();

/** An event's JSON line, as the log writes it. */
export function eventLine(e: LabEvent): string {
  return JSON.stringify(e, replacer);
}

/** Byte payloads are logged as their length and first 64 bytes in hex. */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: value.length, hex: Buffer.from(value.subarray(0, 64)).toString("hex") };
  if (value && typeof value === "object" && (value as { type?: string }).type === "Buffer" && Array.isArray((value as { data?: unknown }).data)) {
    const data = (value as { data: number[] }).data;
    return { bytes: data.length, hex: Buffer.from(data.slice(0, 64)).toString("hex") };
  }
  return value;
}
