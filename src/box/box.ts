// The box: an on-path censor device as the record describes it. It reads the first packets
// of each flow (the kernel queues them to it) and judges them as its model says (checksum,
// sequence and TTL checks or none, first packet or reassembly, flow state from the SYN,
// teardown on RST/FIN or not), with the same policy as every other part. Pure: packets in,
// verdicts and actions out; the kernel side (queue, sets, injection) is box/datapath.ts.
import type { BoxModel } from "../profile/box-model.js";
import type { Verdict } from "../policy/types.js";
import { classify } from "../dpi/classify.js";
import { buildTcp4, type TcpOptions, type TcpPacket } from "./packet.js";
import { streamEnactment, type StreamEnactment } from "../profile/actions.js";
import { Lru } from "../util/lru.js";

/** What the box does with one packet, and what the kernel should remember. */
export interface BoxVerdict {
  /** Let this packet through (false: drop it). */
  pass: boolean;
  /** The flow is decided: the kernel carries it from now on ("allow"), or drops its client's packets ("drop"). */
  decided?: "allow" | "drop";
  /** Null-route client -> server for `seconds` (the rule's key: 4-tuple or 3-tuple; renewed by every matching packet or not: the verdict's residual). */
  residual?: number;
  /** Packets to inject (RSTs towards either end). */
  inject?: Buffer[];
  /** The decision, for the event log (once per flow). */
  judged?: { verdict: Verdict; payloadBytes: number; why: string };
  /** Why the packet was not read (a checksum, sequence or TTL check; no flow state). */
  ignored?: string;
  /** The packet's mark on its way on (TAKEOVER_MARK: delivered to the box's own socket for the flow). */
  mark?: number;
  /** Take the flow over (the datapath makes the server's end and carries the verdict); `otherwise` if it cannot. */
  takeover?: Takeover;
}

/** What the datapath needs to become the server's end of a client's connection (util/tcp-repair.ts). */
export interface Takeover {
  client: { ip: string; port: number };
  server: { ip: string; port: number };
  /** The server's next sequence number; the next byte expected from the client (after `first`). */
  sendSeq: number;
  recvSeq: number;
  /** The client's bytes the box read (handed over in-process; the kernel acknowledges them). */
  first: Buffer;
  clientOptions: TcpOptions;
  serverOptions: TcpOptions;
  /** When the server's SYN/ACK passed (ms, for its timestamp clock). */
  serverSynAt: number;
  /** The client's window in bytes (scaled). */
  clientWindow: number;
  /** The packet-level verdict when the flow cannot be taken over (counted, reported). */
  otherwise: BoxVerdict;
}

/** Packets of a taken-over flow carry this mark: a policy route delivers them to the box's socket. */
export const TAKEOVER_MARK = 0x1;

/** Stream enactments the box carries out as the server's end of the connection (block pages, alerts, MITM, throttling). */
const TAKEN_OVER: ReadonlySet<StreamEnactment> = new Set(["mitm", "page", "alert", "close", "throttle"]);

/** Asks the policy about what the box read (the datapath supplies network, clock and events). */
export type BoxJudge = (obs: { ip: string; port: number; sni?: string; host?: string; path?: string; method?: string; protocol: string; fingerprints: string[]; payload: Buffer }, client: { ip: string; port: number }) => Verdict;

interface Flow {
  client: { ip: string; port: number };
  server: { ip: string; port: number };
  /** Next client sequence number expected (after the SYN). */
  nextSeq: number;
  /** Next server sequence number (for RSTs towards the client). */
  serverNext: number;
  packets: number;
  buf: Buffer;
  /** Out-of-order segments a reassembling box holds, by sequence number. */
  held: Map<number, Buffer>;
  /** The handshake's options, each side's (for a takeover). */
  clientOptions: TcpOptions;
  serverOptions: TcpOptions;
  serverSynAt: number;
  /** Each end's last IP TTL and IP ID as the box saw them (what injected packets copy). */
  seen: { client: { ttl: number; ipId: number }; server: { ttl: number; ipId: number } };
}

const key = (a: string, ap: number, b: string, bp: number): string => `${a}:${ap}>${b}:${bp}`;

export interface BoxStats { packets: number; flows: number; judged: number; ignored: number; failOpen: number; injected: number }

export class Box {
  private readonly flows = new Map<string, Flow>();
  /** Flows decided, client -> server: what their later packets get (bounded; the kernel's sets are the real memory). */
  private readonly decided: Lru<string, "allow" | "drop" | "takeover">;
  /** The client's initial sequence number of each flow's SYN (a reused port's new SYN has another). */
  private readonly isns: Lru<string, number>;
  /** Whether the datapath can take flows over (a socket made with TCP_REPAIR); else their verdicts are enacted with packets. */
  canTakeOver = false;
  readonly stats: BoxStats = { packets: 0, flows: 0, judged: 0, ignored: 0, failOpen: 0, injected: 0 };

  /** `hopsToServer`: routers between the box and the servers (a TTL that cannot cover them never arrives). */
  constructor(private readonly model: BoxModel, private readonly judge: BoxJudge, private readonly hopsToServer = 0, private readonly maxFlows = 100_000) {
    this.decided = new Lru(maxFlows);
    this.isns = new Lru(maxFlows);
  }

  packet(p: TcpPacket): BoxVerdict {
    this.stats.packets++;
    const m = this.model;
    if (m.ports && !m.ports.includes(p.dport) && !m.ports.includes(p.sport)) return { pass: true, decided: "allow" };
    // A client's new SYN on a 4-tuple decided before (the port reused after that flow ended):
    // a new flow, as a box that builds its state from SYNs sees it.
    // (A copy or retransmission of the flow's own SYN carries the same ISN: not a new flow.)
    const c2s = key(p.src, p.sport, p.dst, p.dport);
    if (p.flags.syn && !p.flags.ack && !p.flags.rst && this.decided.get(c2s) && this.isns.get(c2s) !== p.seq) {
      this.decided.delete(c2s);
      this.flows.delete(c2s);
    }
    // A decided flow: the kernel carries it (its sets); these are packets that raced the sets.
    const done = this.decided.get(c2s);
    if (done === "takeover") return { pass: true, mark: TAKEOVER_MARK };
    if (done) return { pass: done === "allow" };
    const back = this.decided.get(key(p.dst, p.dport, p.src, p.sport));
    // The server's side of a flow taken over is orphaned (and reset): nothing of it reaches the client.
    if (back) return { pass: back !== "takeover" };
    const fwd = this.flows.get(key(p.src, p.sport, p.dst, p.dport));
    const rev = fwd ? undefined : this.flows.get(key(p.dst, p.dport, p.src, p.sport));
    let flow = fwd ?? rev;
    const fromClient = !!fwd;
    if (!flow) {
      // Flow state from the SYN the box sees: whoever sends it is the client. A SYN/ACK sent
      // first by the real client makes the box take the server for the client ("turnaround").
      const opens = m.flowFrom === "any" || (p.flags.syn && !p.flags.rst);
      if (!opens) return { pass: true, ignored: "no flow state (the box saw no SYN)" };
      if (this.flows.size >= this.maxFlows) { this.stats.failOpen++; return { pass: true, decided: "allow" }; }
      const asClient = !(p.flags.syn && p.flags.ack);
      flow = {
        client: asClient ? { ip: p.src, port: p.sport } : { ip: p.dst, port: p.dport },
        server: asClient ? { ip: p.dst, port: p.dport } : { ip: p.src, port: p.sport },
        nextSeq: asClient ? (p.seq + 1) >>> 0 : 0, serverNext: asClient ? 0 : (p.seq + 1) >>> 0,
        packets: 0, buf: Buffer.alloc(0), held: new Map(),
        clientOptions: asClient ? p.options ?? {} : {}, serverOptions: asClient ? {} : p.options ?? {}, serverSynAt: asClient ? 0 : Date.now(),
        seen: { client: { ttl: 64, ipId: 0 }, server: { ttl: 64, ipId: 0 } },
      };
      this.flows.set(key(flow.client.ip, flow.client.port, flow.server.ip, flow.server.port), flow);
      if (asClient) this.isns.set(key(flow.client.ip, flow.client.port, flow.server.ip, flow.server.port), p.seq);
      this.stats.flows++;
      if (!asClient) return { pass: true };
      if (!(m.synPayload && p.payload.length)) return { pass: true };
    }
    const clientSide = fromClient || (!fwd && !rev);
    flow.packets++;
    const side = clientSide ? flow.seen.client : flow.seen.server;
    side.ttl = p.ttl;
    side.ipId = p.ipId;
    if (p.flags.syn && p.flags.ack && !clientSide) {
      flow.serverNext = (p.seq + 1) >>> 0;
      flow.serverOptions = p.options ?? {};
      flow.serverSynAt = Date.now();
    }
    if (p.flags.syn && !p.flags.ack && clientSide && (!p.payload.length || !m.synPayload)) { flow.nextSeq = (p.seq + 1) >>> 0; return { pass: true }; }
    if ((p.flags.rst || p.flags.fin) && m.teardown === "rst-fin") {
      this.forget(flow);
      return { pass: true, ignored: "teardown: the box forgets the flow" };
    }
    const ignore = this.unread(p, flow, clientSide);
    if (ignore) { this.stats.ignored++; return { pass: true, ignored: ignore }; }
    if (!p.payload.length || (!clientSide && m.direction === "client")) {
      if (!clientSide && p.flags.ack && !p.flags.syn) flow.serverNext = (p.seq + p.payload.length) >>> 0;
      return this.failOpen(flow) ?? { pass: true };
    }
    const read = this.read(flow, p);
    if (!read) return this.failOpen(flow) ?? { pass: true };
    return this.decide(flow, read, p);
  }

  /** Why the box does not read this packet at all (its checks), or undefined. */
  private unread(p: TcpPacket, flow: Flow, clientSide: boolean): string | undefined {
    const m = this.model;
    if (m.checksum === "validate" && !p.checksumOk) return "bad TCP checksum";
    if (m.ttl === "honour" && p.ttl <= this.hopsToServer) return `TTL ${p.ttl} cannot reach the server (${this.hopsToServer} hops on)`;
    if (m.sequence === "validate" && clientSide && p.payload.length) {
      if (flow.nextSeq && p.seq !== flow.nextSeq && m.inspect === "first-packet") return "sequence number out of window";
      if (flow.serverNext && p.flags.ack && p.ack !== flow.serverNext) return "acknowledges data the server never sent";
    }
    return undefined;
  }

  /** The bytes the box judges, once it has them (undefined: wait for more). */
  private read(flow: Flow, p: TcpPacket): Buffer | undefined {
    const m = this.model;
    if (m.inspect === "first-packet") return p.payload;
    // Reassembly in sequence order, holding what comes early.
    const expected = flow.nextSeq || p.seq;
    if (p.seq !== expected) {
      if (((p.seq - expected) >>> 0) < 1 << 20) flow.held.set(p.seq, p.payload);
      return undefined;
    }
    flow.buf = Buffer.concat([flow.buf, p.payload]);
    flow.nextSeq = (p.seq + p.payload.length) >>> 0;
    for (let next = flow.held.get(flow.nextSeq); next; next = flow.held.get(flow.nextSeq)) {
      flow.held.delete(flow.nextSeq);
      flow.buf = Buffer.concat([flow.buf, next]);
      flow.nextSeq = (flow.nextSeq + next.length) >>> 0;
    }
    if (flow.buf.length >= m.bufferLimit) return flow.buf.subarray(0, m.bufferLimit);
    return classify(flow.buf, false).kind === "partial" ? undefined : flow.buf;
  }

  private decide(flow: Flow, bytes: Buffer, p: TcpPacket): BoxVerdict {
    const c = classify(bytes, true);
    const obs = {
      ip: flow.server.ip, port: flow.server.port, payload: bytes,
      ...(c.kind === "tls" ? { protocol: "tls", ...(c.hello.sni !== undefined ? { sni: c.hello.sni } : {}), fingerprints: c.fingerprints }
        : c.kind === "http" ? { protocol: "http", ...(c.http.host !== undefined ? { host: c.http.host } : {}), path: c.http.path, method: c.http.method, fingerprints: c.fingerprints }
        : c.kind === "other" ? { protocol: c.protocol, fingerprints: c.fingerprints } : { protocol: "unknown", fingerprints: [] }),
    };
    const verdict = this.judge(obs, flow.client);
    this.stats.judged++;
    this.forget(flow);
    const judged = { verdict, payloadBytes: bytes.length, why: this.model.inspect };
    const a = verdict.action.type;
    const residual = verdict.residual && a !== "allow" ? verdict.residual.ms / 1000 : undefined;
    const k = key(flow.client.ip, flow.client.port, flow.server.ip, flow.server.port);
    const enacted = this.enactOnPackets(flow, p, judged, residual);
    // Block pages, alerts, MITM and throttling need the server's end of the connection: taken
    // over when the box saw the handshake (sequence numbers and options), as the real boxes did.
    if (this.canTakeOver && TAKEN_OVER.has(streamEnactment(verdict.action)) && flow.serverNext) {
      this.decided.set(k, "takeover");
      const reassembled = this.model.inspect === "reassemble";
      const scale = flow.clientOptions.wscale !== undefined && flow.serverOptions.wscale !== undefined ? flow.clientOptions.wscale : 0;
      return {
        // A residual null route starts now and binds once the taken-over flow ends (its steering rule comes first).
        pass: false, judged, ...(residual ? { residual } : {}),
        takeover: {
          client: flow.client, server: flow.server, sendSeq: flow.serverNext,
          recvSeq: reassembled ? flow.nextSeq : (p.seq + p.payload.length) >>> 0,
          first: reassembled ? flow.buf : p.payload,
          clientOptions: flow.clientOptions, serverOptions: flow.serverOptions, serverSynAt: flow.serverSynAt,
          clientWindow: p.window * 2 ** scale,
          otherwise: enacted,
        },
      };
    }
    // A residual null route is the whole of the block: the 4-tuple is free again when it expires.
    if (enacted.decided || !residual) this.decided.set(k, enacted.pass ? "allow" : "drop");
    this.stats.injected += enacted.inject?.length ?? 0;
    return enacted;
  }

  /** IP TTL and IP ID of a packet the box injects as one end (its model's `injected`). */
  private looks(end: { ttl: number; ipId: number }): { ttl: number; ipId: number } {
    const { ttl, ipId } = this.model.injected;
    return {
      // The end's packets lose one more at the box's own forwarding; the box's injected ones do not.
      ttl: ttl === "copy" ? Math.max(1, end.ttl - 1) : ttl,
      ipId: ipId === "copy" ? (end.ipId + 1) & 0xffff : ipId === "zero" ? 0 : Math.floor(Math.random() * 0x10000),
    };
  }

  /** A takeover the datapath could not make: the flow's later packets get its packet-level verdict. */
  untake(t: Takeover): void {
    this.decided.set(key(t.client.ip, t.client.port, t.server.ip, t.server.port), t.otherwise.pass ? "allow" : "drop");
    this.stats.injected += t.otherwise.inject?.length ?? 0;
  }

  /** The verdict with packets only: let be, RSTs both ways, or silence. */
  private enactOnPackets(flow: Flow, p: TcpPacket, judged: NonNullable<BoxVerdict["judged"]>, residual: number | undefined): BoxVerdict {
    const a = judged.verdict.action.type;
    if (a === "allow" || a === "throttle" || a === "mitm") return { pass: true, decided: "allow", judged };
    if (a === "rst" || a === "fin" || a === "tls-alert" || a === "blockpage") {
      // Reset both ends, as an injecting box does; the trigger never reaches the server.
      const toServer = buildTcp4({ src: flow.client.ip, dst: flow.server.ip, sport: flow.client.port, dport: flow.server.port, seq: p.seq, ack: 0, flags: { rst: true }, ...this.looks(flow.seen.client) });
      const toClient = buildTcp4({ src: flow.server.ip, dst: flow.client.ip, sport: flow.server.port, dport: flow.client.port, seq: flow.serverNext || p.ack, ack: 0, flags: { rst: true }, ...this.looks(flow.seen.server) });
      return { pass: false, inject: [toClient, toServer], judged, ...(residual ? { residual } : { decided: "drop" as const }) };
    }
    // Silence: the trigger and what follows from the client go nowhere (the 2023-24 TLS timeout).
    return { pass: false, judged, ...(residual ? { residual } : { decided: "drop" as const }) };
  }

  /** Past the packets the box looks at, the flow is let be (kernel speed from now on). */
  private failOpen(flow: Flow): BoxVerdict | undefined {
    if (flow.packets < this.model.queuePackets) return undefined;
    this.forget(flow);
    this.decided.set(key(flow.client.ip, flow.client.port, flow.server.ip, flow.server.port), "allow");
    this.stats.failOpen++;
    return { pass: true, decided: "allow" };
  }

  private forget(flow: Flow): void {
    this.flows.delete(key(flow.client.ip, flow.client.port, flow.server.ip, flow.server.port));
  }

  get size(): number {
    return this.flows.size;
  }
}
