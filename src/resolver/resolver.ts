// The censoring resolver: every query is parsed, judged by the policy and answered as the
// verdict says (or from the world when allowed), and becomes one event.
import type { LabContext } from "../lab/context.js";
import type { Action } from "../profile/model.js";
import type { Verdict } from "../policy/types.js";
import type { Forwarder } from "./forward.js";
import { RCODE, encodeResponse, parseQuery, typeName, type Answer, type Query } from "./wire.js";

export type Transport = "udp" | "tcp";
export interface QueryContext { network: string; client: string; transport: Transport }

export interface ResolverStats {
  queries: number; udp: number; tcp: number; answered: number;
  malformed: number; formerr: number; notimp: number; badvers: number; dropped: number; truncated: number;
  forwarded: number; upstreamFailures: number;
  tcpConnections: number; tcpIdleTimeouts: number; tcpOversized: number; tcpRefused: number;
  /** Busy UDP clients given a connected socket of their own. */
  udpClientSockets: number;
}

/** Actions that make no sense for DNS are enacted as the nearest DNS behaviour. */
function dnsEnactment(a: Action): "answer" | "drop" | "rcode" | "spoof" | "empty" | "truncate" {
  switch (a.type) {
    case "allow": case "throttle": case "mitm": case "blockpage": return "answer";
    case "nxdomain": case "refused": case "servfail": return "rcode";
    case "spoof": return "spoof";
    case "empty": return "empty";
    case "truncate": return "truncate";
    default: return "drop"; // drop, rst, fin, tls-alert, shutdown, outage, reject, queue
  }
}

export class Resolver {
  readonly stats: ResolverStats = {
    queries: 0, udp: 0, tcp: 0, answered: 0, malformed: 0, formerr: 0, notimp: 0, badvers: 0, dropped: 0, truncated: 0,
    forwarded: 0, upstreamFailures: 0, tcpConnections: 0, tcpIdleTimeouts: 0, tcpOversized: 0, tcpRefused: 0,
    udpClientSockets: 0,
  };

  constructor(private readonly lab: LabContext, private readonly forwarder?: Forwarder) {}

  /** Answers one DNS message; resolves to the reply, or null to stay silent. */
  handle(msg: Buffer, ctx: QueryContext): Buffer | null | Promise<Buffer | null> {
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
    const labTime = this.lab.clock.now();
    const qtype = typeName(q.qtype);
    const flow = `dns:${ctx.client}:${q.id}`;
    const verdict = this.lab.policy.decide({ name: q.name, qtype, transport: ctx.transport, protocol: "dns", flow }, labTime, ctx.network);
    const how = dnsEnactment(verdict.action);
    const limit = ctx.transport === "udp" ? (q.edns?.udpSize ?? 512) : 65535;
    switch (how) {
      case "drop":
        this.stats.dropped++;
        this.record(q, qtype, ctx, flow, labTime, verdict, { enacted: "drop" });
        return null;
      case "rcode": {
        const rcode = verdict.action.type === "nxdomain" ? RCODE.NXDOMAIN : verdict.action.type === "refused" ? RCODE.REFUSED : RCODE.SERVFAIL;
        this.record(q, qtype, ctx, flow, labTime, verdict, { rcode: verdict.action.type.toUpperCase() });
        return this.reply(q, rcode, undefined, false, limit);
      }
      case "empty":
        this.record(q, qtype, ctx, flow, labTime, verdict, { rcode: "NOERROR", answers: 0 });
        return this.reply(q, RCODE.NOERROR, undefined, false, limit);
      case "truncate":
        // Over TCP the retry gets the world's answer: that is what truncation forces.
        if (ctx.transport === "udp") {
          this.stats.truncated++;
          this.record(q, qtype, ctx, flow, labTime, verdict, { rcode: "NOERROR", truncated: true });
          return this.reply(q, RCODE.NOERROR, undefined, true, limit);
        }
        break;
      case "spoof": {
        const a = verdict.action as Extract<Action, { type: "spoof" }>;
        const answers = spoofAnswers(q, a.addresses, a.ttl);
        this.record(q, qtype, ctx, flow, labTime, verdict, { rcode: "NOERROR", answers: answers.map((x) => x.address) });
        return this.reply(q, RCODE.NOERROR, answers, false, limit);
      }
    }
    if (this.forwarder) {
      this.record(q, qtype, ctx, flow, labTime, verdict, { upstream: true });
      this.stats.forwarded++;
      return this.forwarder.forward(msg).then((r) => r ?? this.failUpstream(q, limit), () => this.failUpstream(q, limit));
    }
    const w = this.lab.world.answer(q.name, q.qtype === 255 ? "ANY" : qtype);
    this.record(q, qtype, ctx, flow, labTime, verdict, w);
    const inClass = q.qclass === 1 || q.qclass === 255;
    return this.reply(q, w.rcode === "NXDOMAIN" ? RCODE.NXDOMAIN : RCODE.NOERROR, inClass ? w.answers : undefined, false, limit);
  }

  /** One event per query; `detail` is what the client was told (a world answer is logged as it is). */
  private record(q: Query, qtype: string, ctx: QueryContext, flow: string, labTime: number, verdict: Verdict, detail: object): void {
    const events = this.lab.events;
    if (!events.wanted) return events.count(verdict.action.type, ctx.network);
    events.record({
      labTime, component: "resolver", network: ctx.network, client: ctx.client, flow,
      observation: { name: q.name, qtype, transport: ctx.transport },
      action: verdict.action.type, rule: verdict.rule, profile: verdict.profile, seed: verdict.seed,
      detail: detail as Record<string, unknown>,
    });
  }

  private failUpstream(q: Query, limit: number): Buffer {
    this.stats.upstreamFailures++;
    return this.reply(q, RCODE.SERVFAIL, undefined, false, limit);
  }

  private reply(q: Query, rcode: number, answers: readonly Answer[] | undefined, truncate: boolean, limit: number): Buffer {
    this.stats.answered++;
    return encodeResponse(q, { rcode, answers, truncate }, limit);
  }
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
