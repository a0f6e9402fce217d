// What the censoring parts share: the policy (replaced when profiles change), the clock,
// the world, the PKI and the event log.
import type { LabClock } from "../clock/clock.js";
import type { EventLog } from "../events/log.js";
import type { Policy } from "../policy/engine.js";
import type { Pki } from "../pki/pki.js";
import type { World } from "../world/world.js";

export interface LabContext {
  policy: Policy;
  clock: LabClock;
  world: World;
  pki: Pki;
  events: EventLog;
}
