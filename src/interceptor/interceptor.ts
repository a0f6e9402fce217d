// The interceptor: judges a TCP flow and enacts the verdict. Two moments of judgement, one
// event a flow: at connect time on what a packet filter sees (address, port: IP-level rules
// act before any payload, as in the kernel), then on the client's first bytes as the
// profile's DPI reads them (first segment only, or reassembled up to a limit).
import { TLSSocket, connect as tlsConnect } from "node:tls";
import type { Socket } from "node:net";
import type { LabContext } from "../lab/context.js";
import type { Action, Dpi } from "../profile/model.js";
import type { Observation, Verdict } from "../policy/types.js";
import { identityOf } from "../pki/sign.js";
import { classify, type Classified } from "./classify.js";
import { ResidualTable } from "./residual.js";
import { ThrottleStream } from "./throttle.js";
import { LoopError, type Destination, type Upstream } from "./upstream.js";
import { DEFAULT_DPI } from "../profile/model.js";
import { PerRequest } from "./per-request.js";

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
  upstreamErrors: number; loopRefused: number; silentClients: number; reassembleLimits: number; mitm: number; idleClosed: number; handedOver: number; toRelay: number;
  byKind: Record<string, number>;
}

/** Actions that end a flow at connect time (before any payload). */
const CONNECT_TERMINAL = new Set(["drop", "rst", "fin", "shutdown", "outage", "reject", "queue", "tls-alert", "blockpage"]);
const DEFAULT_HOLD_MS = 120_000;
const MAX_HELD = 10_000;
/** A client that sends nothing this long is judged on address and port alone (server-speaks-first protocols). */
const SILENT_CLIENT_MS = 1000;
const IDLE_FLOW_MS = 300_000;
/** How long a server-direction DPI waits for the server's first bytes before letting the flow be. */
const SERVER_WAIT_MS = 5000;

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

export class Interceptor {
  readonly residual = new ResidualTable();
  readonly stats: InterceptStats = {
    flows: 0, judgedAtConnect: 0, residualHits: 0, held: 0, heldNow: 0, upstreamErrors: 0, loopRefused: 0,
    silentClients: 0, reassembleLimits: 0, mitm: 0, idleClosed: 0, handedOver: 0, toRelay: 0, byKind: {},
  };
  private seq = 0;
  private readonly heldSockets = new Set<Socket>();

  private readonly perRequest: PerRequest;

  constructor(private readonly lab: LabContext, private readonly upstream: Upstream) {
    this.perRequest = new PerRequest(lab, (dst) => upstream.httpTarget(dst));
  }

  /** DPI quirks: those of the first active profile (the regime in front). */
  private dpi(): Dpi {
    return this.lab.policy.profiles[0]?.dpi ?? DEFAULT_DPI;
  }

  /**
   * Judges and carries one client connection to `dst`. `initial`: bytes the entry point has
   * already read from the client (a rewritten HTTP request head).
   */
  async intercept(socket: Socket, dst: Destination, network: string, opts: { entry: EntryKind; hooks?: EntryHooks; initial?: Buffer }): Promise<void> {
    this.stats.flows++;
    const flow = `tcp:${process.pid}:${++this.seq}`;
    const clientIp = (socket.remoteAddress ?? "").replace(/^::ffff:/, "");
    const clientPort = socket.remotePort ?? 0;
    const client = `${clientIp}:${clientPort}`;
    const hooks = opts.hooks ?? { established: () => undefined, refused: (how: "rst" | "drop") => { if (how === "rst") socket.resetAndDestroy(); } };
    socket.on("error", () => socket.destroy());
    // A messaging service's endpoint (world data): `service` rules judge the flow here, at the network level.
    const service = this.upstream.serviceOf(dst);
    const base: Observation = { ip: dst.ip, port: dst.port, transport: "tcp", flow, ...(service ? { service } : {}) };
    const atAddress = { ip: dst.ip, port: dst.port, ...(service ? { service } : {}) };
    const event = (verdict: Verdict, observation: Record<string, unknown>, detail: Record<string, unknown>): void => {
      if (!this.lab.events.wanted) return this.lab.events.count(verdict.action.type, network);
      this.lab.events.record({
        labTime: this.lab.clock.now(), component: "interceptor", network, client, flow,
        observation: { ...(dst.host ? { host: dst.host } : {}), ...observation, entry: opts.entry },
        action: verdict.action.type, rule: verdict.rule, profile: verdict.profile, seed: verdict.seed, detail,
      });
    };

    // Residual blocking: a recent trigger still blocks this client -> server pair.
    const residual = this.residual.check(clientIp, clientPort, dst.ip, dst.port, Date.now());
    if (residual) {
      this.stats.residualHits++;
      event(residual, atAddress, { residual: true });
      return this.refuseAtConnect(residual.action, hooks, socket);
    }

    const atConnect = this.lab.policy.decide(base, this.lab.clock.now(), network);
    if (CONNECT_TERMINAL.has(atConnect.action.type)) {
      this.stats.judgedAtConnect++;
      event(atConnect, atAddress, { stage: "connect" });
      this.residual.trigger(atConnect, clientIp, clientPort, dst.ip, dst.port, Date.now());
      return this.refuseAtConnect(atConnect.action, hooks, socket);
    }

    // In the lab world the origin always answers, so the way upstream is opened only for flows
    // the DPI lets through (a blocked flow costs the origin nothing). Towards the internet it is
    // opened first, as a proxy would, so that an unreachable server fails the CONNECT itself.
    const open = async (): Promise<Socket | undefined> => {
      let s: Socket;
      try {
        s = this.upstream.connect(dst, { ip: clientIp, port: clientPort });
      } catch (err) {
        if (err instanceof LoopError) this.stats.loopRefused++;
        return undefined;
      }
      const ok = await new Promise<boolean>((resolve) => {
        s.once("connect", () => resolve(true));
        s.once("error", () => resolve(false));
      });
      if (!ok) { this.stats.upstreamErrors++; s.destroy(); return undefined; }
      s.on("error", () => { s.destroy(); socket.destroy(); });
      return s;
    };
    let up: Socket | undefined;
    if (!this.upstream.lazyFor(dst)) {
      up = await open();
      if (!up) { hooks.refused("rst"); return; }
    }
    hooks.established();

    const first = await this.readFirst(socket, opts.initial);
    if (socket.destroyed) { up?.destroy(); return; }
    const c = classify(first, true);
    this.stats.byKind[c.kind === "other" ? c.protocol : c.kind] = (this.stats.byKind[c.kind === "other" ? c.protocol : c.kind] ?? 0) + 1;
    // Which direction's payload the DPI matches keywords against (dpi.direction).
    const direction = this.dpi().direction;
    const obs: Observation = { ...base, ...observe(c), ...(first.length && direction !== "server" ? { payload: first } : {}) };
    const verdict = this.lab.policy.decide(obs, this.lab.clock.now(), network);
    const { payload: _p, flow: _f, ...logged } = obs;
    event(verdict, logged as Record<string, unknown>, { stage: "payload", bytes: first.length });
    if (verdict.residual && verdict.action.type !== "allow") this.residual.trigger(verdict, clientIp, clientPort, dst.ip, dst.port, Date.now());
    if (verdict.action.type === "allow" && c.kind === "http" && c.http.host !== undefined && this.lab.policy.hasUrlRules(c.http.host)) {
      up?.destroy();
      this.perRequest.take(socket, first, { dst, network, client, flow, entry: opts.entry, hold: (s) => this.hold(s) });
      return;
    }
    const t = verdict.action.type;
    if (t === "allow" && direction !== "client") {
      // The box also reads the server's first bytes: judge them before they reach the client.
      up ??= await open();
      if (!up) { socket.destroy(); return; }
      if (first.length) up.write(first);
      const reply = await firstChunk(up, SERVER_WAIT_MS);
      const { payload: _p2, flow: _f2, ...seen } = obs;
      const onReply = this.lab.policy.decide({ ...obs, payload: reply }, this.lab.clock.now(), network);
      if (onReply.rule) event(onReply, { ...seen, direction: "server" } as Record<string, unknown>, { stage: "server", bytes: reply.length });
      if (onReply.residual && onReply.action.type !== "allow") this.residual.trigger(onReply, clientIp, clientPort, dst.ip, dst.port, Date.now());
      const a = onReply.action;
      if (a.type === "allow" || a.type === "throttle" || a.type === "mitm") {
        if (reply.length) socket.write(reply);
        this.enact(a.type === "mitm" ? { type: "allow" } : a, socket, up, Buffer.alloc(0), c, dst);
      } else {
        up.destroy();
        this.enact(a, socket, undefined, first, c, dst);
      }
      return;
    }
    // An allowed flow needs no more of the censor: in the lab world, hand it to the relay (a
    // messaging service's chat endpoint, not TLS or HTTP) or to the origin.
    if (t === "allow" && !up && c.kind === "other" && this.upstream.toRelay(socket, dst, network, first)) {
      this.stats.toRelay++;
      return;
    }
    if (t === "allow" && !up && this.upstream.handOver(socket, dst, { ip: clientIp, port: clientPort }, first)) {
      this.stats.handedOver++;
      return;
    }
    if (t === "allow" || t === "throttle" || t === "mitm") {
      up ??= await open();
      if (!up) { socket.destroy(); return; }
      this.enact(verdict.action, socket, up, first, c, dst);
    } else {
      up?.destroy();
      this.enact(verdict.action, socket, undefined, first, c, dst);
    }
  }

  private refuseAtConnect(a: Action, hooks: EntryHooks, socket: Socket): void {
    if (a.type === "rst" || a.type === "reject" || a.type === "fin" || (a.type === "outage" && a.mode === "refuse")) hooks.refused("rst");
    else if (a.type === "drop" || a.type === "shutdown" || a.type === "outage" || a.type === "queue") {
      hooks.refused("drop");
      this.hold(socket, a.type === "drop" ? a.timeoutMs : undefined);
    } else hooks.refused("rst");
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

  /** `up` is open for allow, throttle and mitm, and absent for the blocking actions. */
  private enact(a: Action, socket: Socket, up: Socket | undefined, first: Buffer, c: Classified, dst: Destination): void {
    switch (a.type) {
      case "allow":
        return this.splice(socket, up!, first);
      case "throttle":
        return this.splice(socket, up!, first, a);
      case "rst":
        socket.resetAndDestroy();
        return;
      case "fin":
        socket.end();
        return;
      case "blockpage":
        if (c.kind !== "http") { socket.resetAndDestroy(); return; } // no page over TLS: a reset
        socket.end(blockPage(a));
        return;
      case "tls-alert":
        socket.end(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, a.alert & 0xff]));
        return;
      case "mitm":
        if (c.kind !== "tls") return this.splice(socket, up!, first);
        void this.mitm(socket, up!, first, c.hello.sni ?? dst.host ?? dst.ip, a);
        return;
      default: // drop, shutdown, outage, reject, queue: silence
        this.hold(socket, a.type === "drop" ? a.timeoutMs : undefined);
    }
  }

  /** Silence: the client's bytes go nowhere until it gives up (bounded by a timeout). */
  private hold(socket: Socket, timeoutMs = DEFAULT_HOLD_MS): void {
    if (this.heldSockets.size >= MAX_HELD) { socket.destroy(); return; }
    this.stats.held++;
    this.heldSockets.add(socket);
    this.stats.heldNow = this.heldSockets.size;
    socket.removeAllListeners("data");
    socket.on("data", () => undefined); // read and discard, as a black hole would
    socket.resume();
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.once("close", () => {
      clearTimeout(timer);
      this.heldSockets.delete(socket);
      this.stats.heldNow = this.heldSockets.size;
    });
  }

  private splice(socket: Socket, up: Socket, first: Buffer, throttle?: Extract<Action, { type: "throttle" }>): void {
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
  private async mitm(socket: Socket, up: Socket, first: Buffer, name: string, a: Extract<Action, { type: "mitm" }>): Promise<void> {
    this.stats.mitm++;
    const upTls = tlsConnect({ socket: up, servername: name.replace(/\.$/, ""), rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] });
    const ok = await new Promise<boolean>((resolve) => {
      upTls.once("secureConnect", () => resolve(true));
      upTls.once("error", () => resolve(false));
    });
    if (!ok) { socket.destroy(); up.destroy(); return; }
    const raw = upTls.getPeerCertificate(false)?.raw;
    let ctx;
    try {
      ctx = this.lab.pki.context({ names: [name], ca: a.ca, ...(a.copySubject && raw ? { copy: identityOf(raw) } : {}) });
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
    default: return {};
  }
}

function blockPage(a: Extract<Action, { type: "blockpage" }>): string {
  const body = a.body;
  const headers = { "Content-Type": "text/html; charset=utf-8", ...a.headers, "Content-Length": String(Buffer.byteLength(body)), Connection: "close" };
  return `HTTP/1.1 ${a.status} ${a.reason ?? ""}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n${body}`;
}
