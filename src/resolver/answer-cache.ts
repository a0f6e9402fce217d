// Replies to repeated UDP queries, kept while the policy cannot change its mind.
//
// Why: a query's reply is a function of its bytes (less the ID), the network and the
// verdict; the verdict is a function of the same and the lab time, unless a rule has a
// `probability`. So between two window edges of the policy, a repeated query (probes and
// benchmarks repeat a lot) can skip parsing, judging and encoding: the cached reply gets
// the new ID. Each query is still counted and still becomes an event.
import type { Policy } from "../policy/engine.js";
import type { Verdict } from "../policy/types.js";

export interface Outcome {
  /** The reply (ID as first asked), or null to stay silent. */
  reply: Buffer | null;
  kind: "answered" | "dropped" | "truncated";
  name: string;
  qtype: string;
  verdict: Verdict;
  /** What the client was told, for the event. */
  detail: object;
}

/** Queries longer than this are not cached (a normal query is under 100 bytes). */
export const MAX_CACHED_QUERY = 512;

export class AnswerCache {
  private readonly byNetwork = new Map<string, Map<string, Outcome>>();
  private policy: Policy | undefined;
  private from = 0;
  private until = -Infinity;
  private size = 0;

  constructor(private readonly max = 131_072) {}

  /**
   * Whether replies may be cached at lab time `t` under `policy`; forgets every reply when
   * the policy changed or `t` left the span in which the cached verdicts hold (clock seeks
   * included, both ways).
   */
  usable(policy: Policy, t: number): boolean {
    if (!policy.deterministic) return false;
    if (policy !== this.policy || t < this.from || t >= this.until) {
      this.clear();
      this.policy = policy;
      this.from = t;
      this.until = policy.stableUntil(t);
    }
    return true;
  }

  get(network: string, key: string): Outcome | undefined {
    return this.byNetwork.get(network)?.get(key);
  }

  set(network: string, key: string, outcome: Outcome): void {
    if (this.size >= this.max) this.clear();
    let m = this.byNetwork.get(network);
    if (!m) this.byNetwork.set(network, (m = new Map()));
    if (!m.has(key)) this.size++;
    m.set(key, outcome);
  }

  clear(): void {
    this.byNetwork.clear();
    this.size = 0;
  }

  get entries(): number {
    return this.size;
  }
}
