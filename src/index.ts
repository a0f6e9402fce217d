// chokepoint's library API.
export { startLab } from "./api.js";
export type { Lab, LabStatus } from "./lab/lab.js";
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
export { classify, type Classified } from "./dpi/classify.js";
export { parseClientHello, type ClientHello } from "./dpi/clienthello.js";
export { Relay, type RelayStats, type Session, type SubmitResult } from "./relay/relay.js";
export { RelayClient, RelayError, connectThroughSocks, type RelayClientOptions } from "./relay/client.js";
export { SERVICES as RELAY_SERVICES, MAX_FRAME, MAX_TEXT, type RelayFrame, type ClientFrame, type Service } from "./relay/protocol.js";
// For probe authors: expected verdicts from the policy, and scoring results against the event log.
export { expectedVerdict, agrees, webTarget, type ExpectedVerdict } from "./probe/expect.js";
export { score, groundTruth, readEvents, readMeasurements, toBlockingClass, type Measurement, type Score, type ScoredRow, type LoggedEvent, type BlockingClass } from "./probe/score.js";
export { AT_DNS, AT_CONNECT, AT_TLS, AT_HTTP, type Conclusion, type OoniBlocking } from "./probe/verdicts.js";
// The reference probe (also `chokepoint/probe`, with its network steps).
export { runProbe, type ProbeOptions } from "./probe/run.js";
export { webConnectivity, type OoniMeasurement, type WebOptions } from "./probe/web.js";
