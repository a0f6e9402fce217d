// The box in the kernel (the on-path datapath, in the censor namespace): the first packets of
// each flow reach it through NFQUEUE; it judges them (box.ts) with the lab's policy; decided
// flows go into nft sets, so that the rest of each flow (and bulk traffic) stays in the
// kernel; residual null routes are kernel set elements with a timeout renewed by every
// matching packet; RSTs are injected through a raw socket. Verdicts that need the server's
// end of the connection (block pages, alerts, MITM, throttling) take the flow over: a socket
// made with TCP_REPAIR from the handshake the box saw, the flow's packets steered to it (set
// mitm4, a policy route), the orphaned server reset, and the verdict carried out by the
// FlowCarrier (the interceptor). Fail open: a packet the box cannot judge, or one that finds
// no box bound (--queue-bypass), passes.
import { Socket } from "node:net";
import type { LabContext } from "../runtime/context.js";
import { account, judge } from "../runtime/judge.js";
import type { BoxModel } from "../profile/box-model.js";
import { sh } from "../util/exec.js";
import { NF_ACCEPT, NF_DROP, NfLog, NfQueue, Nft, RawSocket, type QueueStats } from "../util/netfilter.js";
import { repairedSocket } from "../util/tcp-repair.js";
import type { FlowCarrier } from "../runtime/flows.js";
import { Box, type BoxStats, type BoxVerdict, type Takeover } from "./box.js";
import { buildTcp4, parseTcp4, type TcpPacket } from "./packet.js";

/** The iptables rule (queue 0) the box is fed by; added and removed with the box. */
export interface BoxDatapathOptions {
  model: BoxModel;
  /** A client's network by its address. */
  networkOf: (ip: string) => string | undefined;
  /** The iptables arguments of the queue rules (-A; removed with -D). */
  queueRules: string[][];
  /**
   * The servers answer from this namespace (a gateway's origin): their packets reach the box
   * from the output hook, before the kernel has filled in their checksums; they are taken as
   * the right checksums they will carry on the wire.
   */
  localServers?: boolean;
  /** The box's own address for its connections to the world (namespace mode): those made for a client leave with the client's address. */
  upstreamAddress?: string;
  /** Hops from where the box sees a packet's TTL to the server (default: the model's routers after the box, and the box's own hop). */
  hopsToServer?: number;
  /** Carries out the verdicts of flows taken over (absent: those verdicts are enacted with packets only). */
  carrier?: FlowCarrier;
}

/** The packet mark of a verdict that lets a flow be (box_decided copies it onto the connection). */
export const ALLOWED_MARK = 0x2;
/** The mark of the box's own packets (injected RSTs, sockets of flows it took over): a gateway's output chain never reads them. */
export const OWN_MARK = 0x4;

export class BoxDatapath {
  readonly box: Box;
  private queue: NfQueue | undefined;
  /** Copies of the handshake and teardown packets (no payload): read, never held (NFLOG group 1). */
  private log: NfLog | undefined;
  private nft: Nft | undefined;
  private raw: RawSocket | undefined;
  /** A gateway's: packets to its own servers (delivered locally, mark 0x1). */
  private rawLocal: RawSocket | undefined;
  /** Packets let through because the box failed on them (fail open, counted). */
  failOpen = 0;
  /** Copies the box would have dropped had it held them (expected 0: the sets' rules come first). */
  copiesOverruled = 0;
  /** Flows taken over, and takeovers the kernel refused (enacted with packets instead). */
  takenOver = 0;
  takeoverFailed = 0;

  constructor(private readonly ctx: LabContext, private readonly o: BoxDatapathOptions) {
    const hopsToServer = o.hopsToServer ?? o.model.hops.server + 1; // the routers after the box, and the box's own hop
    this.box = new Box(o.model, (obs, client) => {
      const network = o.networkOf(client.ip) ?? "-";
      const { payload: _p, ...seen } = obs;
      return judge(ctx, obs, network, () => ({
        component: "box", client: `${client.ip}:${client.port}`,
        observation: { ...seen }, detail: { stage: "packet", datapath: "onpath", inspect: o.model.inspect, bytes: obs.payload.length },
      }));
    }, hopsToServer);
    this.box.canTakeOver = !!o.carrier;
  }

  get stats(): { box: BoxStats; queue: QueueStats | undefined; failOpen: number; setErrors: number; injected: number; takenOver: number; takeoverFailed: number; copies: number; copiesOverruled: number } {
    return {
      box: this.box.stats, queue: this.queue?.stats, failOpen: this.failOpen, setErrors: this.nft?.errors ?? 0, injected: this.raw?.sent ?? 0,
      takenOver: this.takenOver, takeoverFailed: this.takeoverFailed, copies: this.log?.packets ?? 0, copiesOverruled: this.copiesOverruled,
    };
  }

  async start(): Promise<void> {
    this.nft = new Nft();
    this.raw = new RawSocket(OWN_MARK);
    if (this.o.localServers) this.rawLocal = new RawSocket(OWN_MARK | 0x1);
    this.log = new NfLog(1, (bytes) => this.onCopy(bytes));
    this.log.open();
    this.queue = new NfQueue(0, (bytes) => this.onPacket(bytes));
    this.queue.open();
    for (const rule of this.o.queueRules) await sh("iptables", rule);
  }

  /**
   * A copy of a packet the kernel has already forwarded (a SYN, SYN/ACK, RST or FIN without
   * payload): the box learns from it (flow state, sequence numbers, options, teardown) and
   * could not have dropped it anyway (the sets' rules come first; `copiesOverruled` counts any
   * verdict that would have).
   */
  private onCopy(bytes: Buffer): void {
    const p = this.parse(bytes);
    if (!p) return;
    let v: BoxVerdict;
    try {
      v = this.box.packet(p);
    } catch {
      this.failOpen++;
      return;
    }
    if (!v.pass) this.copiesOverruled++;
    if (v.decided === "allow") this.apply(p, { pass: true, decided: "allow" });
  }

  private onPacket(bytes: Buffer): { verdict: typeof NF_ACCEPT | typeof NF_DROP; mark?: number } {
    // Copies that came before this packet are read first: the box sees the flow in order.
    this.log?.drain();
    const p = this.parse(bytes);
    if (!p) return { verdict: NF_ACCEPT };
    let v: BoxVerdict;
    try {
      v = this.box.packet(p);
    } catch {
      this.failOpen++;
      this.event(p, "box-fail-open");
      return { verdict: NF_ACCEPT };
    }
    if (v.takeover && !this.takeOver(v.takeover, v.judged!.verdict)) {
      this.box.untake(v.takeover);
      v = v.takeover.otherwise;
    }
    this.apply(p, v, true);
    const mark = v.mark ?? (v.decided === "allow" ? ALLOWED_MARK : 0);
    return { verdict: v.pass ? NF_ACCEPT : NF_DROP, ...(mark ? { mark } : {}) };
  }

  private parse(bytes: Buffer): TcpPacket | undefined {
    const p = parseTcp4(bytes);
    if (p && this.o.localServers && !p.checksumOk && this.o.networkOf(p.dst) !== undefined) p.checksumOk = true;
    return p;
  }

  /**
   * Becomes the server's end of the client's connection: the flow's client packets are steered
   * to this namespace's stack first (so none reaches the server meanwhile), then the socket is
   * made, the real server's half reset, and the verdict handed to the carrier with the bytes
   * the box read (the trigger itself is dropped: the new socket has acknowledged it).
   */
  private takeOver(t: Takeover, verdict: Parameters<FlowCarrier["carry"]>[3]): boolean {
    const c2s = `${t.client.ip} . ${t.server.ip} . ${t.client.port} . ${t.server.port}`;
    if (!this.nft!.cmd(`add element inet chokepoint mitm4 { ${c2s} }`)) return this.takeoverFailedFor(t, "steering set");
    // The server's half is orphaned: reset it, as a box that takes a connection over does. First:
    // a gateway's server is a socket here, on the very 4-tuple the new socket takes (its RST
    // is delivered locally: mark 0x1, the local route).
    const orphanRst = buildTcp4({ src: t.client.ip, dst: t.server.ip, sport: t.client.port, dport: t.server.port, seq: (t.recvSeq - t.first.length) >>> 0, ack: 0, flags: { rst: true } });
    (this.rawLocal ?? this.raw!).send(orphanRst);
    const both = (o: "wscale" | "sackOk" | "ts"): boolean => t.clientOptions[o] !== undefined && t.serverOptions[o] !== undefined;
    let fd: number;
    try {
      fd = repairedSocket({
        local: t.server, remote: t.client, sendSeq: t.sendSeq, recvSeq: t.recvSeq,
        ...(t.clientOptions.mss ? { mss: t.clientOptions.mss } : {}),
        ...(both("wscale") ? { wscale: { snd: t.clientOptions.wscale!, rcv: t.serverOptions.wscale! } } : {}),
        ...(both("sackOk") ? { sackOk: true } : {}),
        // The server's timestamp clock, run on (ms) since its SYN/ACK: the client's PAWS check passes.
        ...(both("ts") ? { tsval: (t.serverOptions.ts!.val + Math.max(1, Date.now() - t.serverSynAt)) >>> 0 } : {}),
        clientWindow: t.clientWindow,
        mark: OWN_MARK,
      });
    } catch (err) {
      this.nft!.cmd(`delete element inet chokepoint mitm4 { ${c2s} }`);
      return this.takeoverFailedFor(t, (err as Error).message);
    }
    this.takenOver++;
    const socket = new Socket({ fd, readable: true, writable: true });
    socket.once("close", () => this.nft?.later(`delete element inet chokepoint mitm4 { ${c2s} }`));
    this.o.carrier!.carry(socket, t.server, this.o.networkOf(t.client.ip) ?? "-", verdict, t.first);
    return true;
  }

  private takeoverFailedFor(t: Takeover, why: string): false {
    this.takeoverFailed++;
    account(this.ctx.events, { action: { type: "allow" } }, this.o.networkOf(t.client.ip) ?? "-", this.ctx.clock.now(), () => ({
      component: "lab", client: `${t.client.ip}:${t.client.port}`, observation: { ip: t.server.ip, port: t.server.port },
      detail: { box: "takeover-failed", why, enactedWith: "packets" },
    }));
    return false;
  }

  /** Local ports of the box's connections made for clients. */
  private readonly fromClients = new Set<number>();

  /**
   * The source of a connection the box makes for a client's flow (it fetches the server's
   * certificate, or carries a throttled flow): the client's own address, as the 2019 Qaznet
   * box did. The socket binds the box's own address and a port of ours; the map `upsrc`
   * has the kernel rewrite the source to the client's address on the way out (SNAT), and
   * conntrack turns the answers back to the socket. Undefined where the box has no address
   * of its own for it (a gateway), or for an address that is no client's.
   */
  upstreamFrom(client: string, dst: { ip: string; port: number }): { localAddress: string; localPort: number; release: () => void } | undefined {
    const own = this.o.upstreamAddress;
    if (!own || !this.nft || this.o.networkOf(client) === undefined || client.includes(":") || dst.ip.includes(":")) return undefined;
    let port = 0;
    for (let i = 0; i < 16 && !port; i++) {
      const p = 20000 + Math.floor(Math.random() * 12000); // below the clients' own ephemeral ports (32768 and up)
      if (!this.fromClients.has(p)) port = p;
    }
    if (!port) return undefined;
    const key = `${own} . ${port} . ${dst.ip} . ${dst.port}`;
    if (!this.nft.cmd(`add element inet chokepoint upsrc { ${key} : ${client} }`)) return undefined;
    this.fromClients.add(port);
    return {
      localAddress: own, localPort: port,
      release: () => { this.fromClients.delete(port); this.nft?.later(`delete element inet chokepoint upsrc { ${key} }`); },
    };
  }

  /** Decisions into the kernel's sets, injections onto the wire. */
  private apply(p: TcpPacket, v: BoxVerdict, marks = false): void {
    const c2s = `${p.src} . ${p.dst} . ${p.sport} . ${p.dport}`;
    const s2c = `${p.dst} . ${p.src} . ${p.dport} . ${p.sport}`;
    // Batched into one nft transaction per turn; packets that race it are answered by the box's own memory.
    // An allowed packet carries ALLOWED_MARK on: a rule after the queue puts it on its connection
    // (no set to update). Copies cannot carry marks: their flows go into the set.
    if (v.decided === "allow" && !v.mark && !marks) this.nft!.later(`add element inet chokepoint allow4 { ${c2s}, ${s2c} }`);
    if (v.decided === "drop") this.nft!.later(`add element inet chokepoint drop4 { ${c2s} }`);
    if (v.residual) {
      const r = v.judged?.verdict.residual;
      const three = r?.key === "3-tuple";
      const set = `resid${three ? "3" : "4"}${r?.renew === false ? "n" : ""}`;
      this.nft!.cmd(`add element inet chokepoint ${set} { ${three ? `${p.src} . ${p.dst} . ${p.dport}` : c2s} timeout ${v.residual}s }`);
    }
    for (const packet of v.inject ?? []) this.raw!.send(packet);
  }

  /** A lab event about the box itself (fail open), next to the decisions. */
  private event(p: TcpPacket, action: string): void {
    account(this.ctx.events, { action: { type: "allow" } }, this.o.networkOf(p.src) ?? "-", this.ctx.clock.now(), () => ({
      component: "lab", client: `${p.src}:${p.sport}`, observation: { ip: p.dst, port: p.dport }, detail: { box: action },
    }));
  }

  /** Clears the box's residual null routes (a seek or reset): kernel state, like the interceptor's table. */
  clearResidual(): void {
    this.nft?.cmd(["resid4", "resid4n", "resid3", "resid3n"].map((s) => `flush set inet chokepoint ${s}`).join("\n"));
  }

  async stop(): Promise<void> {
    for (const rule of this.o.queueRules) await sh("iptables", rule.map((a) => (a === "-A" ? "-D" : a))).catch(() => undefined);
    await this.queue?.close();
    this.log?.close();
    this.raw?.close();
    this.rawLocal?.close();
  }
}
