// The relay: the lab's messaging services (WhatsApp-like, Viber-like, and each mobile
// operator's SMS centre). Subscribers register a number on a network; messages between them
// pass through here and are judged twice, as a real service would see them:
//   submit  - on the sender's network, when the message reaches the service;
//   deliver - on the recipient's network, when the service hands it over.
// Each judgement is one event (component "relay", flow "msg:<id>", detail.leg).
//
// Service verdicts:
//   allow            accepted (ack), delivered, a receipt goes back to the sender;
//   outage refuse    error "unavailable";   outage silent: acked as accepted, never delivered;
//   reject           error "rejected" with the profile's message (an SMSC refusing);
//   queue            acked as "queued", held until the rule no longer holds, then judged again;
//   throttle         delivered after delay + size/rate; `loss` loses that share of messages;
//   rst / fin        the sender's connection is cut; any other blocking action: silence.
// On the delivery leg every blocking action holds the message for the recipient (a real
// service keeps undelivered messages) until a later judgement lets it through.
import type { LabContext } from "../runtime/context.js";
import type { Action } from "../profile/model.js";
import type { Verdict } from "../policy/types.js";
import { draw } from "../policy/engine.js";
import { assertNever, messageEnactment } from "../profile/actions.js";
import { account } from "../runtime/judge.js";
import { parseFrame, type ClientFrame, type ErrorCode, type RelayFrame, type Service } from "./protocol.js";

export type SessionTransport = "tcp" | "websocket" | "udp";

/** One connected client, whatever carries its frames. */
export interface Session {
  readonly client: string;
  readonly transport: SessionTransport;
  /** The network the path says (a flow through the interceptor); a register frame cannot change it. */
  readonly pathNetwork?: string;
  /** Service assumed when a send frame names none (the endpoint it came in on). */
  readonly defaultVia?: Service;
  number?: string;
  network?: string;
  /** Whether the client reads too slowly to take more (deliveries wait meanwhile). */
  readonly backlogged: boolean;
  readonly closed: boolean;
  write(frame: RelayFrame): void;
  close(how: "rst" | "fin"): void;
}

export interface RelayStats {
  sessions: number; sessionsNow: number; frames: number; badFrames: number; oversizedFrames: number; partialFrames: number;
  /** TCP clients closed for sending a frame too slowly (trickling). */
  trickled: number;
  floods: number; registered: number; messages: number; accepted: number; queued: number; rejected: number;
  unavailable: number; swallowed: number; lost: number; cut: number; delivered: number; heldNow: number;
  queueFull: number; tooLarge: number; unknownNumber: number; notRegistered: number;
}

export interface SubmitResult {
  status: "accepted" | "queued" | "error" | "silent" | "cut";
  code?: ErrorCode;
  message?: string;
  /** For `reject`: the status the profile gives (the SMS gateway uses it as HTTP status). */
  httpStatus?: number;
  id?: string;
}

interface Message {
  rid: string;
  cid?: string;
  from: string;
  to: string;
  via: Service;
  text: string;
  bytes: number;
  network: string;
  client: string;
  sender?: Session;
  sentAt: number;
  /** The verdict that last held it (so a held message is logged once per change). */
  heldBy?: string;
}

export interface RelayOptions {
  /** Networks a number may register on (the active profiles' and the lab's default). */
  networks: readonly string[];
  defaultNetwork: string;
  /** Messages held in all (default 100,000) and for one recipient (default 1,000). */
  maxHeld?: number;
  maxHeldPerNumber?: number;
  /** Frames a session may send per second before `flood` errors (default 5,000). */
  maxFramesPerSecond?: number;
}

/** Frames a second from one session beyond which it is flooding (a person types far fewer; a bot may not). */
const FLOOD_FRAMES = 5000;
const SWEEP_MIN_MS = 20;
const SWEEP_MAX_MS = 500;

export class Relay {
  readonly stats: RelayStats = {
    sessions: 0, sessionsNow: 0, frames: 0, badFrames: 0, oversizedFrames: 0, partialFrames: 0, trickled: 0, floods: 0, registered: 0,
    messages: 0, accepted: 0, queued: 0, rejected: 0, unavailable: 0, swallowed: 0, lost: 0, cut: 0, delivered: 0, heldNow: 0,
    queueFull: 0, tooLarge: 0, unknownNumber: 0, notRegistered: 0,
  };
  /** Every number ever registered: its network and its sessions now. */
  private readonly numbers = new Map<string, { network: string; sessions: Set<Session> }>();
  /** Held at submission by a `queue` verdict. */
  private readonly queued: Message[] = [];
  /** Accepted, waiting for the recipient (offline, backlogged, or its network blocks delivery). */
  private readonly inbox = new Map<string, Message[]>();
  private held = 0;
  private seq = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly rates = new WeakMap<Session, { tokens: number; at: number; flooding: boolean }>();
  private readonly nextFree = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private readonly onClock = (): void => this.scheduleSweep(0);

  constructor(private readonly lab: LabContext, private readonly opts: RelayOptions) {
    lab.clock.on("change", this.onClock);
  }

  get networks(): readonly string[] {
    return this.opts.networks;
  }

  opened(): void {
    this.stats.sessions++;
    this.stats.sessionsNow++;
  }

  closed(s: Session): void {
    this.stats.sessionsNow--;
    if (s.number) this.numbers.get(s.number)?.sessions.delete(s);
  }

  /** One frame's text from a session. */
  frame(s: Session, text: string): void {
    this.stats.frames++;
    if (!this.withinRate(s)) {
      this.stats.floods++;
      return;
    }
    const f = parseFrame(text);
    if ("error" in f) {
      this.stats.badFrames++;
      if (f.code === "too-large") this.stats.tooLarge++;
      s.write({ type: "error", ...(f.id ? { id: f.id } : {}), code: f.code ?? "bad-frame", message: f.error });
      return;
    }
    this.handle(s, f);
  }

  /**
   * A token bucket per session (FLOOD_FRAMES a second, as many in a burst): frames beyond it
   * are dropped and counted; the client is told once each time it starts flooding.
   */
  private withinRate(s: Session): boolean {
    const rate = this.opts.maxFramesPerSecond ?? FLOOD_FRAMES;
    const now = performance.now();
    let b = this.rates.get(s);
    if (!b) this.rates.set(s, (b = { tokens: rate, at: now, flooding: false }));
    b.tokens = Math.min(rate, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens--;
      b.flooding = false;
      return true;
    }
    if (!b.flooding) s.write({ type: "error", code: "flood", message: `more than ${rate} frames a second; frames are being dropped` });
    b.flooding = true;
    return false;
  }

  private handle(s: Session, f: ClientFrame): void {
    switch (f.type) {
      case "ping":
        s.write({ type: "pong" });
        return;
      case "register": {
        const network = s.pathNetwork ?? f.network ?? this.opts.defaultNetwork;
        if (!this.opts.networks.includes(network)) {
          s.write({ type: "error", code: "unknown-network", message: `no network "${network}" in this lab (${this.opts.networks.join(", ")})` });
          return;
        }
        if (s.number) this.numbers.get(s.number)?.sessions.delete(s);
        s.number = f.number;
        s.network = network;
        let entry = this.numbers.get(f.number);
        if (!entry) this.numbers.set(f.number, (entry = { network, sessions: new Set() }));
        entry.network = network;
        entry.sessions.add(s);
        this.stats.registered++;
        s.write({ type: "registered", number: f.number, network });
        this.deliverHeld(f.number);
        return;
      }
      case "send": {
        if (!s.number || !s.network) {
          this.stats.notRegistered++;
          s.write({ type: "error", id: f.id, code: "not-registered", message: "register a number before sending" });
          return;
        }
        const r = this.submit({ from: s.number, to: f.to, via: f.via ?? s.defaultVia ?? "whatsapp", text: f.text, network: s.network, client: s.client, cid: f.id, sender: s });
        if (r.status === "accepted" || r.status === "queued") s.write({ type: "ack", id: f.id, status: r.status });
        else if (r.status === "error") s.write({ type: "error", id: f.id, code: r.code!, message: r.message! });
        else if (r.status === "cut") s.close(r.code === "rejected" ? "rst" : "fin");
      }
    }
  }

  /**
   * A message reaches the service `via` from a subscriber of `network` (a session, or the SMS
   * gateway). Judged on the sender's network; delivered, queued or refused as the verdict says.
   */
  submit(m: { from: string; to: string; via: Service; text: string; network: string; client: string; cid?: string; sender?: Session }): SubmitResult {
    this.stats.messages++;
    const msg: Message = { ...m, rid: `r${++this.seq}`, bytes: Buffer.byteLength(m.text), sentAt: this.lab.clock.now() };
    const verdict = this.judge(msg, msg.network);
    const a = verdict.action;
    const event = (status: string, extra: Record<string, unknown> = {}): void => this.record(msg, "submit", msg.network, msg.client, verdict, { status, ...extra });
    const how = messageEnactment(a);
    switch (how) {
      case "outage":
        if (a.type === "outage" && a.mode === "silent") {
          this.stats.swallowed++;
          event("swallowed");
          return { status: "accepted", id: msg.rid };
        }
        this.stats.unavailable++;
        event("unavailable");
        return { status: "error", code: "unavailable", message: `${msg.via}: service unavailable` };
      case "reject": {
        const r = a.type === "reject" ? a : { error: "rejected", status: undefined };
        this.stats.rejected++;
        event("rejected", { error: r.error });
        return { status: "error", code: "rejected", message: r.error, ...(r.status !== undefined ? { httpStatus: r.status } : {}) };
      }
      case "queue": {
        const max = (a.type === "queue" ? a.maxMessages : undefined) ?? 10_000;
        if (this.queued.length >= max || this.held >= (this.opts.maxHeld ?? 100_000)) {
          this.stats.queueFull++;
          event("queue-full");
          return { status: "error", code: "queue-full", message: "the service's queue is full" };
        }
        this.stats.queued++;
        msg.heldBy = verdict.rule ?? "queue";
        this.queued.push(msg);
        this.held++;
        this.stats.heldNow = this.held;
        event("queued");
        this.scheduleSweep();
        return { status: "queued", id: msg.rid };
      }
      case "cut":
        this.stats.cut++;
        event("cut");
        return { status: "cut", code: a.type === "rst" ? "rejected" : "unavailable" };
      case "silence":
        this.stats.swallowed++;
        event("silent");
        return { status: "silent" };
      case "deliver": case "throttle":
        break; // the service takes it
      default:
        return assertNever(how, "message enactment");
    }
    const known = this.numbers.get(msg.to);
    if (!known) {
      this.stats.unknownNumber++;
      event("unknown-number");
      return { status: "error", code: "unknown-number", message: `${msg.to} is not a subscriber of ${msg.via}` };
    }
    if ((this.inbox.get(msg.to)?.length ?? 0) >= (this.opts.maxHeldPerNumber ?? 1000) || this.held >= (this.opts.maxHeld ?? 100_000)) {
      this.stats.queueFull++;
      event("queue-full");
      return { status: "error", code: "queue-full", message: `too many undelivered messages for ${msg.to}` };
    }
    if (a.type === "throttle" && a.loss !== undefined && draw(`${verdict.profile}/${verdict.rule}|${msg.rid}`) < a.loss) {
      this.stats.lost++;
      event("lost");
      return { status: "accepted", id: msg.rid };
    }
    this.stats.accepted++;
    event("accepted");
    this.afterSubmit(msg, a);
    return { status: "accepted", id: msg.rid };
  }

  /** Throttled messages travel after their delay; others go to the delivery leg at once. */
  private afterSubmit(msg: Message, a: Action): void {
    // Next turn, so that the sender's ack goes out before the recipient's copy and its receipt.
    if (a.type !== "throttle" || (!a.delayMs && !a.rate)) return this.deliverSoon(msg);
    // The sender's link is slow: its messages leave one after another, `rate` bytes a second.
    const key = `${msg.via}|${msg.from}`;
    const now = Date.now();
    const start = Math.max(now, this.nextFree.get(key) ?? 0);
    const done = start + (a.rate ? (msg.bytes / a.rate) * 1000 : 0);
    this.nextFree.set(key, done);
    if (this.nextFree.size > 10_000) for (const [k, t] of this.nextFree) if (t < now) this.nextFree.delete(k);
    this.later(done - now + (a.delayMs ?? 0), () => this.toInbox(msg));
  }

  private soon: Message[] = [];
  /** Delivers on the next turn, all messages of this turn together (their writes then share system calls). */
  private deliverSoon(msg: Message): void {
    if (this.soon.push(msg) > 1) return;
    setImmediate(() => {
      const batch = this.soon;
      this.soon = [];
      if (!this.stopped) for (const m of batch) this.toInbox(m);
    });
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, Math.max(0, ms));
    this.timers.add(t);
  }

  private toInbox(msg: Message): void {
    let box = this.inbox.get(msg.to);
    if (!box) this.inbox.set(msg.to, (box = []));
    box.push(msg);
    this.held++;
    this.stats.heldNow = this.held;
    this.deliverHeld(msg.to);
  }

  /** Tries to hand `number`'s waiting messages over, in order; stops at the first that must wait. */
  private deliverHeld(number: string): void {
    const box = this.inbox.get(number);
    const entry = this.numbers.get(number);
    if (!box?.length || !entry) return;
    const online: Session[] = [];
    for (const s of entry.sessions) if (!s.closed && !s.backlogged) online.push(s);
    if (!online.length) return;
    while (box.length) {
      const msg = box[0]!;
      const verdict = this.judge(msg, entry.network);
      const client = online[0]!.client;
      if (blocks(verdict.action)) {
        // Held for the recipient; logged when the reason changes, not on every retry.
        const reason = `${verdict.profile ?? ""}/${verdict.rule ?? verdict.action.type}`;
        if (msg.heldBy !== reason) {
          msg.heldBy = reason;
          this.record(msg, "deliver", entry.network, client, verdict, { status: "held" });
        }
        this.scheduleSweep();
        break;
      }
      box.shift();
      this.held--;
      this.stats.heldNow = this.held;
      if (verdict.action.type === "throttle" && verdict.action.loss !== undefined && draw(`${verdict.profile}/${verdict.rule}|${msg.rid}/deliver`) < verdict.action.loss) {
        this.stats.lost++;
        this.record(msg, "deliver", entry.network, client, verdict, { status: "lost" });
        continue;
      }
      const frame: RelayFrame = { type: "message", id: msg.rid, from: msg.from, to: msg.to, via: msg.via, text: msg.text, sentAt: iso(msg.sentAt) };
      for (const s of online) s.write(frame);
      this.stats.delivered++;
      this.record(msg, "deliver", entry.network, client, verdict, { status: "delivered" });
      this.receipt(msg);
    }
    if (!box.length) this.inbox.delete(number);
  }

  private receipt(msg: Message): void {
    if (!msg.cid) return;
    const r: RelayFrame = { type: "receipt", id: msg.cid, to: msg.to, status: "delivered", at: iso(this.lab.clock.now()) };
    if (msg.sender && !msg.sender.closed) return msg.sender.write(r);
    for (const s of this.numbers.get(msg.from)?.sessions ?? []) if (!s.closed) s.write(r);
  }

  private judge(msg: Message, network: string): Verdict {
    const policy = this.lab.policy;
    // The flow only matters to `probability` rules.
    return policy.decide(policy.deterministic ? { service: msg.via } : { service: msg.via, flow: `msg:${msg.rid}` }, this.lab.clock.now(), network);
  }

  private record(msg: Message, leg: "submit" | "deliver", network: string, client: string, verdict: Verdict, detail: Record<string, unknown>): void {
    account(this.lab.events, verdict, network, this.lab.clock.now(), () => ({
      component: "relay", client, flow: `msg:${msg.rid}`,
      observation: { service: msg.via, from: msg.from, to: msg.to, bytes: msg.bytes, leg }, detail,
    }));
  }

  /** Re-judges what is held: queued submissions, and messages waiting for their recipient. */
  sweep(): void {
    this.sweepTimer = undefined;
    if (this.stopped) return;
    const waiting = this.queued.splice(0);
    this.held -= waiting.length;
    for (const msg of waiting) {
      const verdict = this.judge(msg, msg.network);
      if (verdict.action.type === "queue") {
        this.queued.push(msg);
        this.held++;
        continue;
      }
      // The queue has opened: the message is judged as if sent now, and logged so.
      this.record(msg, "submit", msg.network, msg.client, verdict, { status: "released" });
      if (blocks(verdict.action)) {
        this.stats.swallowed++;
        continue;
      }
      this.stats.accepted++;
      this.afterSubmit(msg, verdict.action);
    }
    this.stats.heldNow = this.held;
    for (const number of [...this.inbox.keys()]) this.deliverHeld(number);
    if (this.held > 0) this.scheduleSweep();
  }

  /** Sweeps when the policy may next change its mind (clamped), or after `ms`. */
  private scheduleSweep(ms?: number): void {
    if (this.stopped) return;
    if (ms === undefined) {
      if (this.sweepTimer) return;
      const now = this.lab.clock.now();
      ms = this.lab.clock.realDelayUntil(this.lab.policy.stableUntil(now));
    } else if (this.sweepTimer) clearTimeout(this.sweepTimer);
    if (ms !== 0 && this.held === 0) return;
    this.sweepTimer = setTimeout(() => this.sweep(), Math.min(SWEEP_MAX_MS, Math.max(SWEEP_MIN_MS, ms)));
    this.sweepTimer.unref();
  }

  /** Drops every held message (queued and undelivered); returns how many (the control API's reset). */
  clearHeld(): number {
    const n = this.held;
    this.queued.length = 0;
    this.inbox.clear();
    this.held = 0;
    this.stats.heldNow = 0;
    return n;
  }

  stop(): void {
    this.stopped = true;
    this.lab.clock.off("change", this.onClock);
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

/** Whether an action keeps a message from its recipient (anything the service would not deliver). */
function blocks(a: Action): boolean {
  const how = messageEnactment(a);
  return how !== "deliver" && how !== "throttle";
}

function iso(t: number): string {
  return new Date(t).toISOString();
}
