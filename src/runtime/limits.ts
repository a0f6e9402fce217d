// Bounds on what clients can make the lab hold: connections per TCP listener and in all (one
// local client must not starve every service), and how long a client may take to finish a
// unit it started (a request head, a DNS message, a relay frame) however slowly it trickles.
import type { Server, Socket } from "node:net";

/** The defaults (docs/SECURITY.md lists them). */
export const LIMITS = {
  /** Connections at once on one listener. */
  perListener: 4096,
  /** Connections at once on all the lab's TCP listeners together. */
  total: 16384,
  /** A started unit (request head, DNS message, relay frame) must be complete within this. */
  unitMs: 10_000,
} as const;

export interface BudgetStats { open: number; refused: number; byListener: Record<string, { open: number; refused: number }> }

/** One budget of connections for all the lab's TCP listeners. */
export class ConnectionBudget {
  readonly stats: BudgetStats = { open: 0, refused: 0, byListener: {} };

  constructor(private readonly total: number = LIMITS.total, private readonly perListener: number = LIMITS.perListener) {}

  /** Caps `server` (before its own handler sees a connection): over either bound, the connection is closed at once and counted. */
  guard(server: Server, name: string): void {
    const mine = (this.stats.byListener[name] ??= { open: 0, refused: 0 });
    server.prependListener("connection", (s: Socket) => {
      if (mine.open >= this.perListener || this.stats.open >= this.total) {
        mine.refused++;
        this.stats.refused++;
        s.destroy();
        return;
      }
      mine.open++;
      this.stats.open++;
      s.once("close", () => { mine.open--; this.stats.open--; });
    });
  }
}

let unitMsOverride: number | undefined;
/** Tests: a shorter deadline for units (a trickling client is closed sooner). */
export function setUnitMs(ms: number | undefined): void {
  unitMsOverride = ms;
}

/**
 * A deadline for a unit a client has started: `start()` when its first byte arrives (again
 * after each completed unit), `done()` when it is complete; past `ms` the socket is closed
 * and `onExpire` counts it. Unlike an idle timeout, a byte now and then does not extend it.
 */
export function unitDeadline(socket: Socket, onExpire: () => void, ms: number = LIMITS.unitMs): { start(): void; done(): void } {
  ms = unitMsOverride ?? ms;
  let timer: NodeJS.Timeout | undefined;
  socket.once("close", () => clearTimeout(timer));
  return {
    start() {
      if (timer) return;
      timer = setTimeout(() => { onExpire(); socket.destroy(); }, ms);
      timer.unref();
    },
    done() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
