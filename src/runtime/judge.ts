// judge(): the one way a component asks the censor. It decides (the pure policy, at the lab
// time of now, on the client's network) and accounts for the decision: an event when someone
// reads events (a file, a subscriber), else a counter, so that the ground truth and the
// counters never disagree and a busy lab with no reader builds no events.
import type { EventInput } from "../events/types.js";
import type { EventLog } from "../events/log.js";
import type { Observation, Verdict } from "../policy/types.js";
import type { LabContext } from "./context.js";

/** What an event says besides the verdict (built only when someone reads events). */
export type EventFields = Omit<EventInput, "labTime" | "network" | "action" | "rule" | "profile" | "seed"> & { labTime?: number };

/** Records the verdict as an event when events are read, else counts it. */
export function account(events: EventLog, verdict: Verdict, network: string, labTime: number, fields: () => EventFields): void {
  if (!events.wanted) return events.count(verdict.action.type, network);
  const f = fields();
  events.record({
    ...f, labTime: f.labTime ?? labTime, network,
    action: verdict.action.type, rule: verdict.rule, profile: verdict.profile, seed: verdict.seed,
  });
}

/**
 * Decides `obs` on `network` now and accounts for it (unless `fields` is absent: a component
 * that accounts later, once it knows what it did, calls account() itself).
 */
export function judge(ctx: LabContext, obs: Observation, network: string, fields?: () => EventFields): Verdict {
  const labTime = ctx.clock.now();
  const verdict = ctx.policy.decide(obs, labTime, network);
  if (fields) account(ctx.events, verdict, network, labTime, fields);
  return verdict;
}
