// The interceptor: judges a TCP flow and enacts the verdict. Two moments of judgement, one
// event a flow: at connect time on what a packet filter sees (address, port: IP-level rules
// act before any payload, as in the kernel), then on the client's first bytes as the
// profile's DPI reads them (first segment only, or reassembled up to a limit).
//
// intercept() runs the stages in order; each either ends the flow or hands it on:
//   residual  a recent trigger still blocks this client -> server pair
//   connect   address and port judged (what the action table's `connect` column says)
//   upstream  opened first when the destination is not the lab world's origin
//   payload   the first bytes read as the DPI reads them, classified, judged
//   server    (dpi.direction server/both) the server's first bytes judged too
//   enact     the action table's `stream` column: pass (hand over or splice), throttle,
//             MITM, reset, close, page, alert, or silence
import { TLSSocket, connect as tlsConnect, rootCertificates } from "node:tls";
import type { Socket } from "node:net";
import type { LabContext } from "../runtime/context.js";
import { account, judge, type EventFields } from "../runtime/judge.js";
import type { FlowCarrier } from "../runtime/flows.js";
import type { Action, Dpi } from "../profile/model.js";
import { blockPage } from "./page.js";
import { DEFAULT_DPI } from "../profile/model.js";
import { assertNever, connectEnactment, streamEnactment } from "../profile/actions.js";
import type { Observation, Verdict } from "../policy/types.js";
import { identityOf } from "../pki/sign.js";
import { classify, type Classified } from "../dpi/classify.js";
import { ResidualTable } from "./residual.js";
import { ThrottleStream } from "./throttle.js";
import { LoopError, type Destination, type Upstream } from "./upstream.js";
import { PerRequest } from "./per-request.js";
import { unmap } from "../util/address.js";

export type EntryKind = "http-proxy" | "socks" | "transparent";

/** How an entry point answers for the connection before payload flows. */
export interface EntryHooks {
  /** The way to the destination is open: CONNECT 200, SOCKS success (transparent: nothing). */
  established(): void;
  /** Refused at connect time: RST (connection refused), or silence (drop: answer nothing; the interceptor holds the socket). */
  refused(how: "rst" | "drop"): void;
}

export interface InterceptStats {
  flows: number; judgedAtConnect: number; residualHits: number; held: number; heldNow: number;
  upstreamErrors: number; loopRefused: number; silentClients: number; /** Flows closed because the lab's own code failed on them (a bug; never a crash). */ internalErrors: number; reassembleLimits: number; mitm: number; idleClosed: number; handedOver: number; toRelay: number;
  /** MITMs not made because the server's certificate was not valid (serverValid). */
  mitmSkipped: number;
  /** Connections the on-path box took over and handed here (carry). */
  takenOver: number;
  byKind: Record<string, number>;
}

const DEFAULT_HOLD_MS = 120_000;
const MAX_HELD = 10_000;
/** A client that sends nothing this long is judged on address and port alone (server-speaks-first protocols). */
const SILENT_CLIENT_MS = 1000;
const IDLE_FLOW_MS = 300_000;
/** A server (or the lab's origin) that does not answer within this fails the flow, rather than hanging it. */
const UPSTREAM_CONNECT_MS = 5000;
/** How long a server-direction DPI waits for the server's first bytes before letting the flow be. */
const SERVER_WAIT_MS = 5000;

type Throttle = Extract<Action, { type: "throttle" }>;
type Mitm = Extract<Action, { type: "mitm" }>;

/** One client connection on its way through the stages. */
interface Flow {
  socket: Socket;
  dst: Destination;
  network: string;
  id: string;
  client: { ip: string; port: number };
  entry: EntryKind;
  hooks: EntryHooks;
  initial: Buffer | undefined;
  /** The destination's messaging service (world data), if any. */
  service: string | undefined;
  base: Observation;
  up?: Socket | undefined;
  /** The probe's measurement id (the proxy username's "+TAG"), carried by every event of the flow. */
  tag?: string;
}

/** The first chunk `s` receives (empty after `ms`), leaving the socket paused. */
function firstChunk(s: Socket, ms: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const done = (b: Buffer): void => {
      clearTimeout(timer);
      s.off("data", onData);
      s.off("close", onClose);
      s.pause();
      resolve(b);
    };
    const onData = (d: Buffer): void => done(d);
    const onClose = (): void => done(Buffer.alloc(0));
    const timer = setTimeout(() => done(Buffer.alloc(0)), ms);
    s.on("data", onData);
    s.once("close", onClose);
  });
}

export class Interceptor implements FlowCarrier {
  readonly residual = new ResidualTable();
  readonly stats: InterceptStats = {
    flows: 0, judgedAtConnect: 0, residualHits: 0, held: 0, heldNow: 0, upstreamErrors: 0, loopRefused: 0,
    silentClients: 0, internalErrors: 0, reassembleLimits: 0, mitm: 0, mitmSkipped: 0, idleClosed: 0, handedOver: 0, toRelay: 0, takenOver: 0, byKind: {},
  };
  private seq = 0;
  private readonly heldSockets = new Set<Socket>();

  private readonly perRequest: PerRequest;

  constructor(private readonly lab: LabContext, private readonly upstream: Upstream) {
    this.perRequest = new PerRequest(lab, (dst) => ({ url: upstream.httpTarget(dst), agent: upstream.httpAgent(dst) }));
  }

  /** DPI quirks: those of the first active profile (the regime in front). */
  private dpi(): Dpi {
    return this.lab.policy.profiles[0]?.dpi ?? DEFAULT_DPI;
  }

  /**
   * Judges and carries one client connection to `dst`. `initial`: bytes the entry point has
   * already read from the client (a rewritten HTTP request head).
   */
  async intercept(socket: Socket, dst: Destination, network: string, opts: { entry: EntryKind; hooks?: EntryHooks; initial?: Buffer; tag?: string }): Promise<void> {
    const f = this.begin(socket, dst, network, opts);
    if (this.residualStage(f) || this.connectStage(f)) return;
    if (!(await this.upstreamStage(f))) return;
    f.hooks.established();
    const first = await this.readFirst(socket, f.initial);
    if (socket.destroyed) { f.up?.destroy(); return; }
    if (!first.length) return this.silentStage(f);
    const { verdict, c } = this.payloadStage(f, first);
    if (this.perRequestStage(f, verdict, c, first)) return;
    if (streamEnactment(verdict.action) === "pass" && this.dpi().direction !== "client") return this.serverStage(f, first, c);
    return this.enact(f, verdict.action, first, c);
  }

  /**
   * A connection the on-path box judged and took over (its server end made with TCP_REPAIR):
   * the verdict's stream enactment, carried out here; not judged again (the box's event stands).
   */
  carry(socket: Socket, dst: { ip: string; port: number }, network: string, verdict: Verdict, first: Buffer): void {
    const f = this.begin(socket, dst, network, { entry: "transparent" });
    this.stats.takenOver++;
    this.trigger(f, verdict);
    this.enact(f, verdict.action, first, classify(first, true));
  }

  private begin(socket: Socket, dst: Destination, network: string, opts: { entry: EntryKind; hooks?: EntryHooks; initial?: Buffer; tag?: string }): Flow {
    this.stats.flows++;
    socket.on("error", () => socket.destroy());
    const service = this.upstream.serviceOf(dst);
    const id = `tcp:${process.pid}:${++this.seq}`;
    return {
      socket, dst, network, id, entry: opts.entry, initial: opts.initial, service, ...(opts.tag ? { tag: opts.tag } : {}),
      client: { ip: unmap(socket.remoteAddress), port: socket.remotePort ?? 0 },
      hooks: opts.hooks ?? { established: () => undefined, refused: (how) => { if (how === "rst") socket.resetAndDestroy(); } },
      // A messaging service's endpoint (world data): `service` rules judge the flow here, at the network level.
      base: { ip: dst.ip, port: dst.port, transport: "tcp", flow: id, ...(service ? { service } : {}) },
    };
  }

  /** The event fields of a decision on this flow (built only when someone reads events). */
  private fields(f: Flow, observation: Record<string, unknown>, detail: Record<string, unknown>): () => EventFields {
    return () => ({
      component: "interceptor", client: `${f.client.ip}:${f.client.port}`, flow: f.id, ...(f.tag ? { tag: f.tag } : {}),
      observation: { ...(f.dst.host ? { host: f.dst.host } : {}), ...observation, entry: f.entry }, detail,
    });
  }

  private atAddress(f: Flow): Record<string, unknown> {
    return { ip: f.dst.ip, port: f.dst.port, ...(f.service ? { service: f.service } : {}) };
  }

  private trigger(f: Flow, v: Verdict): void {
    if (v.residual && v.action.type !== "allow") this.residual.trigger(v, f.client.ip, f.client.port, f.dst.ip, f.dst.port, Date.now());
  }

  /** Residual blocking: a recent trigger still blocks this client -> server pair. True when the flow ended here. */
  private residualStage(f: Flow): boolean {
    const residual = this.residual.check(f.client.ip, f.client.port, f.dst.ip, f.dst.port, Date.now());
    if (!residual) return false;
    this.stats.residualHits++;
    // Not judged again: the table's verdict stands.
    account(this.lab.events, residual, f.network, this.lab.clock.now(), this.fields(f, this.atAddress(f), { residual: true }));
    this.refuseAtConnect(f, residual.action);
    return true;
  }

  /** Address and port, as a packet filter sees them. True when the flow ended here. */
  private connectStage(f: Flow): boolean {
    const atConnect = judge(this.lab, f.base, f.network);
    if (connectEnactment(atConnect.action) === "pass") return false;
    this.stats.judgedAtConnect++;
    account(this.lab.events, atConnect, f.network, this.lab.clock.now(), this.fields(f, this.atAddress(f), { stage: "connect" }));
    this.trigger(f, atConnect);
    this.refuseAtConnect(f, atConnect.action);
    return true;
  }

  private refuseAtConnect(f: Flow, a: Action): void {
    const how = connectEnactment(a);
    switch (how) {
      case "silence":
        f.hooks.refused("drop");
        return this.hold(f.socket, a.type === "drop" ? a.timeoutMs : undefined);
      case "reset": case "pass": // a verdict that passes cannot end a flow here; answered as a refusal if it did
        return f.hooks.refused("rst");
      default:
        return assertNever(how, "connect enactment");
    }
  }

  /**
   * In the lab world the origin always answers, so the way upstream is opened only for flows
   * the DPI lets through (a blocked flow costs the origin nothing). Elsewhere it is opened
   * first, as a proxy would, so that an unreachable server fails the CONNECT itself.
   */
  private async upstreamStage(f: Flow): Promise<boolean> {
    if (this.upstream.lazyFor(f.dst)) return true;
    f.up = await this.open(f);
    if (!f.up) { f.hooks.refused("rst"); return false; }
    return true;
  }

  private async open(f: Flow): Promise<Socket | undefined> {
    let s: Socket;
    try {
      s = this.upstream.connect(f.dst, f.client);
    } catch (err) {
      if (err instanceof LoopError) this.stats.loopRefused++;
      return undefined;
    }
    const ok = await new Promise<string | true>((resolve) => {
      const timer = setTimeout(() => resolve(`no connection within ${UPSTREAM_CONNECT_MS / 1000} s`), UPSTREAM_CONNECT_MS);
      s.once("connect", () => { clearTimeout(timer); resolve(true); });
      s.once("error", (e) => { clearTimeout(timer); resolve(e.message); });
    });
    if (ok !== true) {
      this.stats.upstreamErrors++;
      s.destroy();
      this.upstreamFailed(f, ok);
      return undefined;
    }
    s.on("error", () => { s.destroy(); f.socket.destroy(); });
    return s;
  }

  /** A flow the censor let through (or kept) could not reach its destination: said in the record, next to its verdict. */
  private upstreamFailed(f: Flow, error: string): void {
    if (!this.lab.events.wanted) return;
    this.lab.events.record({
      labTime: this.lab.clock.now(), component: "lab", action: "upstream-error", network: f.network, client: `${f.client.ip}:${f.client.port}`, flow: f.id,
      detail: { ip: f.dst.ip, port: f.dst.port, error },
    });
  }

  /** The client's first bytes, classified and judged (one event for the flow). */
  private payloadStage(f: Flow, whole: Buffer): { verdict: Verdict; c: Classified } {
    // A reassembling DPI reads no further than its buffer (the 2020-22 Kazakh HTTP box: 1,434
    // bytes; a Host header past them is not seen), however much one read brought.
    const dpi = this.dpi();
    const first = dpi.inspect === "reassemble" && whole.length > dpi.reassembleBytes ? whole.subarray(0, dpi.reassembleBytes) : whole;
    const c = classify(first, true);
    const kind = c.kind === "other" ? c.protocol : c.kind;
    this.stats.byKind[kind] = (this.stats.byKind[kind] ?? 0) + 1;
    // Which direction's payload the DPI matches keywords against (dpi.direction).
    const obs: Observation = { ...f.base, ...observe(c), ...(first.length && this.dpi().direction !== "server" ? { payload: first } : {}) };
    const { payload: _p, flow: _f, ...logged } = obs;
    const verdict = judge(this.lab, obs, f.network, this.fields(f, logged as Record<string, unknown>, { stage: "payload", bytes: first.length }));
    this.trigger(f, verdict);
    return { verdict, c };
  }

  /**
   * A client that says nothing at first: the server may speak first (SSH, SMTP, a relay), so
   * the way upstream opens and the server's bytes flow, but the censor keeps watching: the
   * client's first bytes, whenever they come, are judged as if they had come at once (a delay
   * before the ClientHello evades nothing, as on the real boxes).
   */
  private async silentStage(f: Flow): Promise<void> {
    f.up ??= await this.open(f);
    if (!f.up) { f.socket.destroy(); return; }
    const up = f.up;
    const fromServer = (d: Buffer): void => { f.socket.write(d); };
    up.on("data", fromServer);
    up.resume();
    const waiting = firstChunk(f.socket, IDLE_FLOW_MS);
    f.socket.resume(); // readFirst left it paused
    const first = await waiting;
    up.off("data", fromServer);
    up.pause();
    if (f.socket.destroyed || !first.length) {
      this.payloadStage(f, Buffer.alloc(0)); // the flow's one event: it said nothing
      f.socket.destroy();
      up.destroy();
      return;
    }
    const { verdict, c } = this.payloadStage(f, first);
    return this.enact(f, verdict.action, first, c);
  }

  /** An allowed HTTP flow to a host with URL-path rules: every request is judged (per-request.ts). */
  private perRequestStage(f: Flow, verdict: Verdict, c: Classified, first: Buffer): boolean {
    if (verdict.action.type !== "allow" || c.kind !== "http" || c.http.host === undefined || !this.lab.policy.hasUrlRules(c.http.host)) return false;
    f.up?.destroy();
    this.perRequest.take(f.socket, first, { dst: f.dst, network: f.network, client: `${f.client.ip}:${f.client.port}`, flow: f.id, entry: f.entry, hold: (s, ms, then) => this.hold(s, ms, then) });
    return true;
  }

  /** The box also reads the server's first bytes: judged before they reach the client. */
  private async serverStage(f: Flow, first: Buffer, c: Classified): Promise<void> {
    f.up ??= await this.open(f);
    if (!f.up) { f.socket.destroy(); return; }
    if (first.length) f.up.write(first);
    const reply = await firstChunk(f.up, SERVER_WAIT_MS);
    const obs: Observation = { ...f.base, ...observe(c), payload: reply };
    const onReply = judge(this.lab, obs, f.network);
    const { payload: _p, flow: _f, ...seen } = obs;
    if (onReply.rule) account(this.lab.events, onReply, f.network, this.lab.clock.now(), this.fields(f, { ...seen, direction: "server" }, { stage: "server", bytes: reply.length }));
    this.trigger(f, onReply);
    const how = streamEnactment(onReply.action);
    if (how === "pass" || how === "throttle" || how === "mitm") {
      if (reply.length) f.socket.write(reply);
      // The server's side is already read: a MITM has nothing left to intercept.
      return this.enact(f, how === "mitm" ? { type: "allow" } : onReply.action, Buffer.alloc(0), c);
    }
    f.up.destroy();
    f.up = undefined;
    return this.enact(f, onReply.action, first, c);
  }

  /** The verdict on the stream, as the action table's `stream` column says. */
  private enact(f: Flow, a: Action, first: Buffer, c: Classified): void {
    const how = streamEnactment(a);
    const { socket } = f;
    switch (how) {
      case "pass": return this.settle(f, this.pass(f, first, c));
      case "throttle": return this.settle(f, this.withUpstream(f, (up) => this.splice(socket, up, first, a as Throttle)));
      case "mitm":
        if (c.kind !== "tls") return this.settle(f, this.withUpstream(f, (up) => this.splice(socket, up, first)));
        return this.settle(f, this.withUpstream(f, (up) => void this.settle(f, this.mitm(f, up, first, c.hello.sni ?? f.dst.host ?? f.dst.ip, a as Mitm))));
      case "reset": f.up?.destroy(); socket.resetAndDestroy(); return;
      case "close": f.up?.destroy(); socket.end(); return;
      case "page":
        f.up?.destroy();
        if (c.kind !== "http" || a.type !== "blockpage") { socket.resetAndDestroy(); return; } // no page over TLS: a reset
        if (a.holdMs) return this.holdThenPage(socket, a);
        socket.end(blockPage(a));
        return;
      case "alert":
        f.up?.destroy();
        socket.end(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, (a.type === "tls-alert" ? a.alert : 40) & 0xff]));
        return;
      case "silence":
        f.up?.destroy();
        return this.hold(socket, a.type === "drop" ? a.timeoutMs : undefined);
      default:
        return assertNever(how, "stream enactment");
    }
  }

  /** Work a flow goes on with after its verdict: if the lab's own code fails there, the flow is closed and counted, never the process. */
  private settle(f: Flow, work: Promise<void>): void {
    work.catch(() => {
      this.stats.internalErrors++;
      f.up?.destroy();
      f.socket.destroy();
    });
  }

  /**
   * The page after a hold (KZ HTTP 2019-20, SIGCOMM 2020 §5.3): the censor keeps the stream,
   * reading and dropping what the client sends, for `holdMs`; then the page and a FIN (the
   * record saw them in one FIN+PSH+ACK segment; here the kernel decides the segmentation). A
   * client that leaves first ends it.
   */
  private holdThenPage(socket: Socket, a: Extract<Action, { type: "blockpage" }>): void {
    this.hold(socket, a.holdMs, () => socket.end(blockPage(a)));
  }

  /**
   * An allowed flow needs no more of the censor: in the lab world it is handed to the relay (a
   * messaging service's chat endpoint, not TLS or HTTP) or to the origin; else it is spliced.
   */
  private async pass(f: Flow, first: Buffer, c: Classified): Promise<void> {
    if (!f.up) {
      const service = c.kind === "other" ? this.upstream.chatOf(f.dst) : undefined;
      if (service) {
        this.stats.toRelay++;
        return this.upstream.toRelay(f.socket, f.network, service, first);
      }
      if (this.upstream.handOver(f.socket, { client: f.client, dst: f.dst, network: f.network }, first)) {
        this.stats.handedOver++;
        return;
      }
    }
    await this.withUpstream(f, (up) => this.splice(f.socket, up, first));
  }

  private async withUpstream(f: Flow, then: (up: Socket) => void): Promise<void> {
    f.up ??= await this.open(f);
    if (!f.up) { f.socket.destroy(); return; }
    then(f.up);
  }

  /** Reads the client's first bytes as the DPI would see them. */
  private readFirst(socket: Socket, initial: Buffer | undefined): Promise<Buffer> {
    const dpi = this.dpi();
    return new Promise((resolve) => {
      let buf: Buffer = initial ?? Buffer.alloc(0);
      let timer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        socket.off("data", onData);
        socket.off("end", finish);
        socket.off("close", finish);
        if (timer) clearTimeout(timer);
        socket.pause();
        resolve(buf);
      };
      const enough = (): boolean => {
        if (!buf.length) return false;
        if (dpi.inspect === "first-segment") return true;
        if (buf.length >= dpi.reassembleBytes) { this.stats.reassembleLimits++; return true; }
        return classify(buf, false).kind !== "partial";
      };
      const onData = (d: Buffer): void => {
        const firstChunk = !buf.length;
        buf = buf.length ? Buffer.concat([buf, d]) : d;
        if (enough()) return finish();
        if (firstChunk) {
          if (timer) clearTimeout(timer);
          timer = setTimeout(finish, dpi.reassembleTimeoutMs); // reassembly gives up after a while
        }
      };
      if (enough()) return resolve(buf);
      socket.on("data", onData);
      socket.once("end", finish);
      socket.once("close", finish);
      if (!buf.length) {
        timer = setTimeout(() => { this.stats.silentClients++; finish(); }, SILENT_CLIENT_MS);
      }
      socket.resume();
    });
  }

  /** Silence: the client's bytes go nowhere until it gives up (bounded by a timeout, then closed, or `then`). */
  private hold(socket: Socket, timeoutMs = DEFAULT_HOLD_MS, then?: () => void): void {
    if (this.heldSockets.size >= MAX_HELD) { socket.destroy(); return; }
    this.stats.held++;
    this.heldSockets.add(socket);
    this.stats.heldNow = this.heldSockets.size;
    socket.removeAllListeners("data");
    socket.on("data", () => undefined); // read and discard, as a black hole would
    socket.resume();
    const timer = setTimeout(() => (then && !socket.destroyed ? then() : socket.destroy()), timeoutMs);
    socket.once("close", () => {
      clearTimeout(timer);
      this.heldSockets.delete(socket);
      this.stats.heldNow = this.heldSockets.size;
    });
  }

  private splice(socket: Socket, up: Socket, first: Buffer, throttle?: Throttle): void {
    if (first.length) up.write(first);
    // Idle flows are closed after a while, as a stateful middlebox forgets them.
    socket.setTimeout(IDLE_FLOW_MS, () => { this.stats.idleClosed++; socket.destroy(); up.destroy(); });
    const close = (): void => { socket.destroy(); up.destroy(); };
    socket.on("close", () => up.destroy());
    // A server that closes cleanly: what is still in the throttle reaches the client first
    // (the pipe ends the client's side once it is through).
    up.on("close", (hadError: boolean) => { if (hadError) close(); else if (!throttle) socket.end(); });
    socket.on("error", close);
    if (throttle) {
      const down = new ThrottleStream(throttle);
      const upT = new ThrottleStream({ ...throttle, afterBytes: undefined });
      down.on("error", close);
      upT.on("error", close);
      up.pipe(down).pipe(socket);
      socket.pipe(upT).pipe(up);
    } else {
      up.pipe(socket);
      socket.pipe(up);
    }
    socket.resume();
  }

  /** Terminates the client's TLS with a leaf of the profile's CA, copying the origin's subject. */
  private async mitm(f: Flow, up: Socket, first: Buffer, name: string, a: Mitm): Promise<void> {
    const { socket } = f;
    this.stats.mitm++;
    // Trust as a browser would (the system's roots, and the lab CA the world's servers use);
    // the name is not checked: the 2019 box required a valid certificate "not necessarily for the SNI name".
    const upTls = tlsConnect({
      socket: up, servername: name.replace(/\.$/, ""), rejectUnauthorized: false, ALPNProtocols: ["http/1.1"],
      ...(a.serverValid ? { ca: [...rootCertificates, this.lab.pki.authority("lab").certPem], checkServerIdentity: () => undefined } : {}),
    });
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), UPSTREAM_CONNECT_MS);
      upTls.once("secureConnect", () => { clearTimeout(timer); resolve(true); });
      upTls.once("error", () => { clearTimeout(timer); resolve(false); });
    });
    if (!ok) { socket.destroy(); upTls.destroy(); up.destroy(); return; }
    if (a.serverValid && !upTls.authorized) {
      // Not intercepted: the flow goes to the server untouched, over a new connection (the
      // one above spoke TLS already); said in the record next to the verdict.
      upTls.destroy();
      this.stats.mitmSkipped++;
      account(this.lab.events, { action: { type: "allow" } }, f.network, this.lab.clock.now(), () => ({
        component: "lab", client: `${f.client.ip}:${f.client.port}`, flow: f.id,
        observation: { ip: f.dst.ip, port: f.dst.port, sni: name }, detail: { mitm: "not intercepted: the server's certificate is not valid", error: String(upTls.authorizationError) },
      }));
      f.up = undefined;
      return this.withUpstream(f, (again) => this.splice(socket, again, first));
    }
    const raw = upTls.getPeerCertificate(false)?.raw;
    let ctx;
    try {
      const req = { names: [name], ca: a.ca, at: this.lab.clock.now(), ...(a.copySubject && raw ? { copy: identityOf(raw) } : {}) };
      await this.lab.pki.prepare(req); // a forged host key, generated off the event loop
      if (socket.destroyed) { upTls.destroy(); return; }
      ctx = this.lab.pki.context(req);
    } catch {
      socket.destroy(); upTls.destroy(); return;
    }
    // The ClientHello was read: give it back before TLS takes over the (paused) socket.
    socket.unshift(first);
    const client = new TLSSocket(socket, { isServer: true, secureContext: ctx, ALPNProtocols: ["http/1.1"] });
    const close = (): void => { client.destroy(); upTls.destroy(); };
    client.on("error", close);
    upTls.on("error", close);
    client.on("close", () => upTls.destroy());
    upTls.on("close", () => client.end());
    client.pipe(upTls).pipe(client);
  }
}

function observe(c: Classified): Partial<Observation> {
  switch (c.kind) {
    case "http": return { protocol: "http", method: c.http.method, path: c.http.path, ...(c.http.host !== undefined ? { host: c.http.host } : {}), fingerprints: c.fingerprints };
    case "tls": return { protocol: "tls", ...(c.hello.sni !== undefined ? { sni: c.hello.sni } : {}), alpn: c.hello.alpn, fingerprints: c.fingerprints };
    case "other": return { protocol: c.protocol, fingerprints: c.fingerprints };
    case "partial": return {};
    default: return assertNever(c, "classification");
  }
}

