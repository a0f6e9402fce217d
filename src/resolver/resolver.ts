// The censoring resolver: every query is parsed, judged by the policy and answered as the
// verdict says (or from the world when allowed), and becomes one event.
import type { LabContext } from "../runtime/context.js";
import type { Action } from "../profile/model.js";
import { assertNever, dnsEnactment } from "../profile/actions.js";
import { account } from "../runtime/judge.js";
import type { Verdict } from "../policy/types.js";
import type { Forwarder } from "./forward.js";
import { AnswerCache, MAX_CACHED_QUERY, type Outcome } from "./answer-cache.js";
import { RCODE, encodeResponse, parseQuery, typeName, type Answer, type Query } from "../dns/wire.js";

export type Transport = "udp" | "tcp";
export interface QueryContext { network: string; client: string; transport: Transport }

export interface ResolverStats {
  queries: number; udp: number; tcp: number; answered: number;
  malformed: number; formerr: number; notimp: number; badvers: number; dropped: number; truncated: number;
  forwarded: number; upstreamFailures: number;
  tcpConnections: number; tcpIdleTimeouts: number; tcpOversized: number; tcpRefused: number;
  /** TCP clients closed for sending a message too slowly (trickling). */
  tcpTrickled: number;
  /** Busy UDP clients given a connected socket of their own. */
  udpClientSockets: number;
  /** UDP queries answered from the answer cache. */
  cacheHits: number;
}

/** The rcode of each action whose DNS enactment is "rcode" (the action table says which). */
const RCODES: Partial<Record<Action["type"], number>> = { nxdomain: RCODE.NXDOMAIN, refused: RCODE.REFUSED, servfail: RCODE.SERVFAIL };

export class Resolver {
  readonly stats: ResolverStats = {
    queries: 0, udp: 0, tcp: 0, answered: 0, malformed: 0, formerr: 0, notimp: 0, badvers: 0, dropped: 0, truncated: 0,
    forwarded: 0, upstreamFailures: 0, tcpConnections: 0, tcpIdleTimeouts: 0, tcpOversized: 0, tcpRefused: 0, tcpTrickled: 0,
    udpClientSockets: 0, cacheHits: 0,
  };

  constructor(private readonly lab: LabContext, private readonly forwarder?: Forwarder) {}

  /** Replies to repeated UDP queries (see answer-cache.ts). */
  readonly cache = new AnswerCache();

  /** Answers one DNS message; resolves to the reply, or null to stay silent. */
  handle(msg: Buffer, ctx: QueryContext): Buffer | null | Promise<Buffer | null> {
    const labTime = this.lab.clock.now();
    let key: string | undefined;
    if (ctx.transport === "udp" && !this.forwarder && msg.length >= 12 && msg.length <= MAX_CACHED_QUERY && this.cache.usable(this.lab.policy, labTime)) {
      key = msg.toString("latin1", 2);
      const hit = this.cache.get(ctx.network, key);
      if (hit) {
        this.stats.queries++;
        this.stats.udp++;
        this.stats.cacheHits++;
        return this.enact(hit, msg.readUInt16BE(0), ctx, labTime, true);
      }
    }
    const parsed = parseQuery(msg);
    if (!parsed.ok) {
      this.stats.malformed++;
      if ("drop" in parsed) return null;
      if (parsed.rcode === RCODE.NOTIMP) this.stats.notimp++;
      else if (parsed.rcode === RCODE.BADVERS) this.stats.badvers++;
      else this.stats.formerr++;
      return encodeResponse(parsed.query ?? { id: parsed.id, opcode: parsed.opcode, rd: parsed.rd }, { rcode: parsed.rcode });
    }
    const q = parsed.query;
    this.stats.queries++;
    this.stats[ctx.transport]++;
    const qtype = typeName(q.qtype);
    const policy = this.lab.policy;
    // The flow only matters to `probability` rules (and to the event, which builds its own).
    const obs = { name: q.name, qtype, transport: ctx.transport, protocol: "dns", ...(policy.deterministic ? {} : { flow: flowOf(ctx, q.id) }) };
    const verdict = policy.decide(obs, labTime, ctx.network);
    const how = dnsEnactment(verdict.action);
    if (this.forwarder && (how === "world" || (how === "truncate" && ctx.transport === "tcp"))) {
      this.record(q.name, qtype, q.id, ctx, labTime, verdict, { upstream: true });
      this.stats.forwarded++;
      const limit = q.edns?.udpSize ?? 512;
      return this.forwarder.forward(msg).then((r) => r ?? this.failUpstream(q, limit), () => this.failUpstream(q, limit));
    }
    const outcome = this.outcome(q, qtype, verdict, ctx.transport);
    if (key !== undefined) this.cache.set(ctx.network, key, outcome);
    return this.enact(outcome, q.id, ctx, labTime, false);
  }

  /** What the verdict makes of a query (no side effects: the outcome may be cached). */
  private outcome(q: Query, qtype: string, verdict: Verdict, transport: Transport): Outcome {
    const limit = transport === "udp" ? (q.edns?.udpSize ?? 512) : 65535;
    const out = (kind: Outcome["kind"], detail: object, reply: Buffer | null): Outcome => ({ reply, kind, name: q.name, qtype, verdict, detail });
    const how = dnsEnactment(verdict.action);
    switch (how) {
      case "silence":
        return out("dropped", { enacted: "drop" }, null);
      case "rcode": {
        const t = verdict.action.type;
        const rcode = RCODES[t] ?? RCODE.SERVFAIL;
        return out("answered", { rcode: t.toUpperCase() }, encodeResponse(q, { rcode }, limit));
      }
      case "empty":
        return out("answered", { rcode: "NOERROR", answers: 0 }, encodeResponse(q, { rcode: RCODE.NOERROR }, limit));
      case "truncate":
        // Over TCP the retry gets the world's answer: that is what truncation forces.
        if (transport === "udp") return out("truncated", { rcode: "NOERROR", truncated: true }, encodeResponse(q, { rcode: RCODE.NOERROR, truncate: true }, limit));
        break;
      case "spoof": {
        const a = verdict.action as Extract<Action, { type: "spoof" }>;
        const answers = spoofAnswers(q, a.addresses, a.ttl);
        return out("answered", { rcode: "NOERROR", answers: answers.map((x) => x.address) }, encodeResponse(q, { rcode: RCODE.NOERROR, answers }, limit));
      }
      case "world":
        break;
      default:
        return assertNever(how, "DNS enactment");
    }
    const w = this.lab.world.answer(q.name, q.qtype === 255 ? "ANY" : qtype);
    const inClass = q.qclass === 1 || q.qclass === 255;
    return out("answered", w, encodeResponse(q, { rcode: w.rcode === "NXDOMAIN" ? RCODE.NXDOMAIN : RCODE.NOERROR, answers: inClass ? w.answers : undefined }, limit));
  }

  /** Counts and records the outcome; returns the reply for query `id`. */
  private enact(o: Outcome, id: number, ctx: QueryContext, labTime: number, cached: boolean): Buffer | null {
    this.record(o.name, o.qtype, id, ctx, labTime, o.verdict, o.detail);
    if (o.kind === "dropped") this.stats.dropped++;
    else {
      this.stats.answered++;
      if (o.kind === "truncated") this.stats.truncated++;
    }
    if (!o.reply || !cached) return o.reply;
    // A cached reply is shared: the client gets a copy with its own ID.
    const reply = Buffer.allocUnsafe(o.reply.length);
    o.reply.copy(reply);
    reply.writeUInt16BE(id, 0);
    return reply;
  }

  /** One event per query; `detail` is what the client was told (a world answer is logged as it is). */
  private record(name: string, qtype: string, id: number, ctx: QueryContext, labTime: number, verdict: Verdict, detail: object): void {
    account(this.lab.events, verdict, ctx.network, labTime, () => ({
      component: "resolver", client: ctx.client, flow: flowOf(ctx, id),
      observation: { name, qtype, transport: ctx.transport }, detail: detail as Record<string, unknown>,
    }));
  }

  private failUpstream(q: Query, limit: number): Buffer {
    this.stats.upstreamFailures++;
    this.stats.answered++;
    return encodeResponse(q, { rcode: RCODE.SERVFAIL }, limit);
  }
}

function flowOf(ctx: QueryContext, id: number): string {
  return `dns:${ctx.client}:${id}`;
}

function spoofAnswers(q: Query, addresses: string[], ttl: number): Answer[] {
  const want = q.qtype === 255 ? "ANY" : typeName(q.qtype);
  const out: Answer[] = [];
  for (const address of addresses) {
    const type = address.includes(":") ? "AAAA" : "A";
    if (want === "ANY" || want === type) out.push({ type, address, ttl });
  }
  return out;
}
