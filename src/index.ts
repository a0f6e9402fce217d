// chokepoint's library API.
export { startLab, type Lab } from "./lab/lab.js";
export type { LabOptions, Endpoints, Endpoint } from "./lab/options.js";
export { LabClock, type ClockOptions, type ClockState, type TimeSource } from "./clock/clock.js";
export { EventLog } from "./events/log.js";
export type { LabEvent, Component } from "./events/types.js";
export { Policy, compilePolicy, type CompileOptions } from "./policy/engine.js";
export type { Observation, Verdict } from "./policy/types.js";
export { loadProfile, type LoadOptions, type LoadResult } from "./profile/load.js";
export { scanProfiles, resolveProfileRef, profilesAt, type ProfileSummary } from "./profile/catalog.js";
export type { Profile, Rule, Action, Match, Window } from "./profile/model.js";
export { loadSeeds, type Seed, type SeedCatalog } from "./seeds/catalog.js";
export { formatError, SourceErrors, type SourceError } from "./util/yaml-source.js";
export { Interceptor, type EntryKind, type EntryHooks } from "./interceptor/interceptor.js";
export type { Destination } from "./interceptor/upstream.js";
export { classify, type Classified } from "./interceptor/classify.js";
export { parseClientHello, type ClientHello } from "./interceptor/clienthello.js";
