// The lifecycle every part of a running lab has. The lab assembles its parts as a list of
// services and drives them through it: start in order, stop in reverse, and tell each of a
// new policy, a new network, or a reset. A new component is one folder plus one line there.
import type { Policy } from "../policy/engine.js";

export interface LabService {
  /** For errors and status ("resolver", "relay", ...). */
  readonly name: string;
  start(): Promise<void>;
  /** The active profiles changed: `policy` is already in the context. */
  policyChanged?(policy: Policy): Promise<void> | void;
  /** A profile activated at run time brought a network the lab did not have. */
  networkAdded?(network: string): Promise<void> | void;
  /** Clears run-time state (residual table, held messages); what was cleared, by name. */
  reset?(): Record<string, number>;
  stop(): Promise<void>;
}

/** Starts services in order; on a failure, stops those already started (in reverse) and rethrows. */
export async function startAll(services: LabService[]): Promise<void> {
  const started: LabService[] = [];
  try {
    for (const s of services) {
      await s.start();
      started.push(s);
    }
  } catch (err) {
    await stopAll(started);
    throw err;
  }
}

/** Stops services in reverse order; one failing does not keep the others running. */
export async function stopAll(services: LabService[]): Promise<void> {
  for (const s of [...services].reverse()) await s.stop().catch(() => undefined);
}
