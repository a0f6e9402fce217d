// Residual blocking: after a trigger, new connections from the same client to the same
// server address and port (3-tuple; or 4-tuple with the client port) are blocked for a time,
// optionally renewed by each blocked attempt (Kazakhstan 2021-24: about 120 s).
import type { Residual } from "../profile/model.js";
import type { Verdict } from "../policy/types.js";

interface Entry { until: number; verdict: Verdict; residual: Residual }

export class ResidualTable {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries = 100_000;

  private static key(r: Residual, client: string, clientPort: number, ip: string, port: number): string {
    return r.key === "4-tuple" ? `${client}|${clientPort}|${ip}|${port}` : `${client}|${ip}|${port}`;
  }

  /** Records a trigger at real time `now`. */
  trigger(verdict: Verdict, client: string, clientPort: number, ip: string, port: number, now: number): void {
    const r = verdict.residual;
    if (!r) return;
    if (this.entries.size >= this.maxEntries) this.sweep(now);
    this.entries.set(ResidualTable.key(r, client, clientPort, ip, port), { until: now + r.ms, verdict, residual: r });
  }

  /** The verdict still in force for this connection, if any (renewing it when the rule says so). */
  check(client: string, clientPort: number, ip: string, port: number, now: number): Verdict | undefined {
    if (this.entries.size === 0) return undefined;
    for (const key of [`${client}|${ip}|${port}`, `${client}|${clientPort}|${ip}|${port}`]) {
      const e = this.entries.get(key);
      if (!e) continue;
      if (e.until <= now) { this.entries.delete(key); continue; }
      if (e.residual.renew) e.until = now + e.residual.ms;
      return e.verdict;
    }
    return undefined;
  }

  /** Milliseconds of residual blocking left for client[:clientPort] -> ip:port, without renewing; 0 if none. */
  remaining(client: string, ip: string, port: number, now: number, clientPort?: number): number {
    const e = this.entries.get(`${client}|${ip}|${port}`) ?? (clientPort !== undefined ? this.entries.get(`${client}|${clientPort}|${ip}|${port}`) : undefined);
    return e && e.until > now ? e.until - now : 0;
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private sweep(now: number): void {
    for (const [k, e] of this.entries) if (e.until <= now) this.entries.delete(k);
    if (this.entries.size >= this.maxEntries) this.entries.clear();
  }
}
