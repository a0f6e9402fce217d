// `chokepoint/probe`: the probe toolkit on its own, for probe authors' tests. The reference
// probe (runProbe: OONI's web connectivity against a running lab, known by its control API's
// URL; webConnectivity for one URL through given endpoints), its network steps, the verdict
// table, expected verdicts from a policy, and scoring against the event log.
export { runProbe, type ProbeOptions } from "./run.js";
export { webConnectivity, analyse, headersMatch, ooniTime, issuerOf, PROBE_NAME, WEB_CONNECTIVITY_VERSION, type WebOptions, type OoniMeasurement, type Blocking, type ThRequestBody, type ThResponseBody } from "./web.js";
export { dnsQuery, tlsHandshake, httpGet, titleOf, failureOf, STEP_MS, HTTP_MS, type DnsReply, type HttpResponse, type Endpoint } from "./net.js";
export { expectedVerdict, agrees, webTarget, type ExpectedVerdict, type WebTarget } from "./expect.js";
export { score, groundTruth, readEvents, readMeasurements, readResults, toBlockingClass, BLOCKING_CLASSES, type Measurement, type Score, type ScoredRow, type LoggedEvent, type BlockingClass } from "./score.js";
export { AT_DNS, AT_CONNECT, AT_TLS, AT_HTTP, dnsRcodeFailure, type Conclusion, type OoniBlocking } from "./verdicts.js";
export { expectedMessaging, MESSAGING_TESTS, type ExpectedMessaging, type MessagingTestName } from "./messaging.js";
