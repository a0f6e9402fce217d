// The profile schema: the one place where the shape of a profile is defined. Types are
// inferred from it, profiles/schema.json is generated from it (scripts/gen-schema.mjs),
// and validation (load.ts) adds the checks a schema cannot express (dates, time zones,
// duplicate ids, seed references, list files) with file:line:col positions.
import { z } from "zod";
import { CONFIDENCE, ID } from "../seeds/schema.js";
import { Duration, Probability } from "./values.js";
import { FINGERPRINT_NAMES, PROTOCOLS, SERVICES } from "./vocabulary.js";
import { MATCHERS, MATCHER_NAMES, type MatcherName } from "./matchers.js";
import { ACTIONS, ACTION_NAMES, PARAM_ACTIONS, SIMPLE_ACTIONS } from "./actions.js";
import type { ActionType } from "./model.js";

export { CONFIDENCE, ID };

const Confidence = z.enum(CONFIDENCE).describe("how sure the record is: P primary measurement, O official, N news, S secondary or our inference, U unverified");

/** A list file: names (or addresses) loaded from disk, relative to the profile. */
const ListFile = z.strictObject({
  file: z.string().min(1).describe("the list file, relative to the profile"),
  format: z.enum(["plain", "csv", "rpz"]).optional().describe("plain (one entry a line, # comments), csv (OONI/Citizen Lab test-lists, with its header) or rpz (a zone; its records keep their meaning); default from the extension"),
  mode: z.enum(["exact", "suffix"]).optional().describe("how bare names in the file match: the name only (exact, default) or with all its subdomains (suffix)"),
}).describe("names or addresses from a file");
const names = (what: string) => z.union([z.string().min(1), z.array(z.string().min(1)).min(1), ListFile])
  .describe(`${what}: "example.org" that name, ".example.org" it and its subdomains, "*.example.org" subdomains only; a list, or { file }`);
const IpMatch = z.union([z.string().min(1), z.array(z.string().min(1)).min(1), ListFile]).describe("destination addresses and CIDRs (IPv4 and IPv6), a list, or { file }");
const PortSpec = z.union([z.number().int().min(0).max(65535), z.string().regex(/^\d{1,5}-\d{1,5}$/, 'a port or a range "1000-2000"')]);
const KeywordMatch = z.union([
  z.string().min(1),
  z.array(z.string().min(1)).min(1),
  z.strictObject({
    any: z.array(z.string().min(1)).min(1).describe("byte patterns, any of which matches"),
    ignoreCase: z.boolean().optional().describe("match ASCII letters in any case"),
  }),
]).describe("byte patterns in the first bytes the DPI reads (Aho-Corasick)");
const StrList = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

/** The matchers, each described by its declaration (matchers.ts). */
const m = <T extends z.ZodType>(k: MatcherName, t: T) => t.optional().describe(MATCHERS[k].what + MATCHER_HELP[k]);
const MATCHER_HELP: Record<MatcherName, string> = {
  domain: " (the resolver's queries)", host: " (the interceptor reads it from HTTP requests)", sni: " (from the TLS ClientHello)",
  url: ': host and path prefix, "translate.example/translate"', keyword: "", ip: " (destination)", port: ': numbers or ranges "1000-2000"',
  protocol: ` (${PROTOCOLS.join(", ")})`, fingerprint: ` (${FINGERPRINT_NAMES.join(", ")}, ja3:<md5>, ja4:<id>)`, service: ` (${SERVICES.join(", ")})`,
  all: ": everything the rule's networks send (a shutdown)",
};

export const MatchSchema = z
  .strictObject({
    domain: m("domain", names("DNS query names")),
    host: m("host", names("HTTP Host")),
    sni: m("sni", names("TLS server names")),
    url: m("url", StrList),
    keyword: m("keyword", KeywordMatch),
    ip: m("ip", IpMatch),
    port: m("port", z.union([PortSpec, z.array(PortSpec).min(1)])),
    protocol: m("protocol", z.union([z.enum(PROTOCOLS), z.array(z.enum(PROTOCOLS)).min(1)])),
    fingerprint: m("fingerprint", StrList),
    service: m("service", z.union([z.enum(SERVICES), z.array(z.enum(SERVICES)).min(1)])),
    all: m("all", z.literal(true)),
  } satisfies Record<MatcherName, z.ZodType>)
  .refine((x) => Object.values(x).some((v) => v !== undefined), { message: `match needs at least one matcher (${MATCHER_NAMES.join(", ")})` })
  .describe("what the rule matches; matchers are ANDed");

export { ACTION_NAMES, PARAM_ACTIONS, SIMPLE_ACTIONS };

/** An action: a bare word, or a one-key map of its parameters; both derived from the action table (actions.ts). */
export const ActionSchema = z.union([
  z.enum(SIMPLE_ACTIONS as [string, ...string[]]),
  ...Object.entries(PARAM_ACTIONS).map(([name, params]) => z.strictObject({ [name]: (params as z.ZodType).describe(ACTIONS[name as ActionType].summary) })),
] as unknown as [z.ZodType, z.ZodType, ...z.ZodType[]]).describe(`what the censor does: ${ACTION_NAMES.map((n) => `${n} (${ACTIONS[n as ActionType].summary})`).join("; ")}`);

export const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
export const WindowSchema = z
  .strictObject({
    start: z.string().optional().describe("from this instant: with an offset, or wall-clock time in `timezone` (default: the profile's)"),
    end: z.string().optional().describe("until this instant (same forms as start)"),
    daily: z.strictObject({
      from: z.string().describe("local time of day, HH:MM"),
      to: z.string().describe("local time of day, HH:MM (before `from`: the window crosses midnight)"),
      days: z.array(z.enum(DAYS)).min(1).optional().describe("only these weekdays"),
    }).optional().describe("every day between two local wall-clock times"),
    intermittent: z.strictObject({
      on: Duration.describe("on for this long"),
      off: Duration.describe("then off for this long"),
      anchor: z.string().optional().describe("the cycle starts here (default: the window's or profile's start)"),
    }).optional().describe("on and off, repeating"),
    relative: z.strictObject({
      after: Duration.optional().describe("from this long after the lab started"),
      for: Duration.optional().describe("for this long"),
    }).optional().describe("relative to the instant the lab started (lab time), for CI fixtures"),
    timezone: z.string().optional().describe("IANA name (Asia/Almaty) or offset (+06:00) for this window's local times"),
  })
  .refine((w) => w.start || w.end || w.daily || w.intermittent || w.relative, {
    message: "a window needs start/end, daily, intermittent or relative",
  })
  .describe("when the rule holds; every condition present must hold");

export const ResidualSchema = z.strictObject({
  seconds: z.number().positive().describe("how long the pair stays blocked after a trigger"),
  key: z.enum(["3-tuple", "4-tuple"]).optional().describe("3-tuple: client address, server address and port; 4-tuple adds the client port"),
  renew: z.boolean().optional().describe("each blocked retry restarts the timer (Kazakhstan 2021-24)"),
}).describe("after a trigger, block the same client and server for a while");

export const RuleSchema = z.strictObject({
  id: ID.describe("unique in the profile"),
  description: z.string().optional().describe("what the rule stands for, in words"),
  match: MatchSchema,
  action: ActionSchema,
  window: z.union([WindowSchema, z.array(WindowSchema).min(1)]).optional().describe("when the rule holds (a list: any of them); default the profile's period"),
  networks: z.array(z.union([ID, z.literal("*")])).min(1).optional().describe("networks the rule applies to (default: all of the profile's); \"*\" for any"),
  seed: ID.optional().describe("the documented event this rule comes from (seeds/)"),
  confidence: Confidence.optional(),
  probability: Probability.optional().describe("share of flows the rule acts on (deterministic per flow)"),
  residual: ResidualSchema.optional(),
}).describe("a rule: match, action, window, networks, seed; the first matching active rule wins");

export const DpiSchema = z.strictObject({
  inspect: z.enum(["first-segment", "reassemble"]).optional().describe("first-segment: judge only the first chunk the client sent; reassemble: buffer up to the limits"),
  reassembleBytes: z.number().int().positive().optional().describe("reassembly stops here (default 16384)"),
  reassembleTimeout: Duration.optional().describe("reassembly gives up after this (default 2s)"),
  hostCase: z.enum(["insensitive", "sensitive"]).optional().describe("whether Host matching minds case"),
  direction: z.enum(["client", "server", "both"]).optional().describe("whose payload keyword and fingerprint rules read"),
  box: z.strictObject({
    flowFrom: z.enum(["syn", "any"]).optional().describe("syn: flow state from the SYN the box sees (a SYN/ACK first reverses its roles); any: from the first packet"),
    synPayload: z.boolean().optional().describe("a SYN's payload counts as the flow's first data (a second SYN with data desynchronizes the box)"),
    checksum: z.enum(["validate", "ignore"]).optional().describe("whether a segment with a bad TCP checksum is read"),
    sequence: z.enum(["validate", "ignore"]).optional().describe("whether a segment out of sequence, or acknowledging unsent data, is read"),
    ttl: z.enum(["honour", "ignore"]).optional().describe("whether a packet whose TTL cannot reach the server is read"),
    inspect: z.enum(["first-packet", "reassemble"]).optional().describe("judge the first data segment alone, or reassemble in order"),
    bufferLimit: z.number().int().positive().optional().describe("bytes a reassembling box holds before judging what it has"),
    teardown: z.enum(["rst-fin", "ignore"]).optional().describe("whether a RST or FIN ends the box's state for the flow"),
    direction: z.enum(["client", "both"]).optional().describe("whose payload triggers"),
    ports: z.array(z.number().int().min(1).max(65535)).min(1).optional().describe("ports the box inspects (default any)"),
    queuePackets: z.number().int().min(1).max(64).optional().describe("packets of a flow the box looks at before letting it be"),
    hops: z.strictObject({
      client: z.number().int().min(0).max(8).describe("routers between the clients and the box"),
      server: z.number().int().min(0).max(8).describe("routers between the box and the servers"),
    }).optional().describe("where the box sits on the path"),
    injected: z.strictObject({
      ttl: z.union([z.literal("copy"), z.number().int().min(1).max(255)]).optional().describe("IP TTL of injected packets: copy (that of the end impersonated, as the box saw it; default) or an initial TTL"),
      ipId: z.enum(["copy", "zero", "random"]).optional().describe("IP ID of injected packets: copy (the impersonated end's next; default), zero or random"),
    }).optional().describe("how the packets the box injects (RSTs) look; the record does not report KZ's values"),
    sources: z.string().optional().describe("where each switch comes from (sources, confidence)"),
  }).optional().describe("the on-path box (--datapath onpath): how the device behaves on the wire, switch by switch"),
}).describe("the censor's DPI quirks");

export const VariantSchema = z.strictObject({
  description: z.string().optional().describe("what this variant supposes"),
  confidence: Confidence.optional(),
  rules: z.array(RuleSchema).optional().describe("rules added, or replacing the base rule with the same id"),
  disable: z.array(ID).optional().describe("base rule ids switched off in this variant"),
  dpi: DpiSchema.optional().describe("DPI quirks (and the on-path box's switches) this variant changes"),
}).describe("an alternative mechanism where the record is unsure (--variant NAME)");

export const OBSERVATIONS = [
  "dns", "tcp_ip", "http-failure", "http-diff", "false",
  "tls-timeout", "tls-reset", "mitm", "throttled", "service-unavailable", "residual", "blockpage",
] as const;
/** What a correct probe concludes (profiles' expect rows, `chokepoint expect`). */
export type Observed = (typeof OBSERVATIONS)[number];
export const ExpectSchema = z.strictObject({
  target: z.string().min(1).describe("an http(s) URL, service:NAME, tor://HOST:PORT or obfs4://HOST:PORT"),
  observe: z.enum(OBSERVATIONS).describe("what a correct probe concludes: OONI's blocking (dns, tcp_ip, http-failure, http-diff, false) or the lab's own"),
  networks: z.array(ID).min(1).optional().describe("measured from these networks (default: the lab's default)"),
  at: z.string().optional().describe("at this instant (default: noon of the profile's first day)"),
  variant: z.string().optional().describe("with this variant"),
  note: z.string().optional().describe("why"),
}).describe("what a probe should observe for a target");

export const WorldSchema = z.strictObject({
  hosts: z.record(z.string(), z.array(z.string().min(1)).min(1)).optional().describe("names pinned to addresses (\"*.wordpress.com\": [...]), so that IP blocks hit what they hit"),
  nonexistent: z.array(z.string().min(1)).optional().describe("names that do not exist (NXDOMAIN from the world itself)"),
  certs: z.record(z.string(), z.enum(["valid", "expired", "not-yet-valid", "wrong-name", "self-signed"])).optional().describe("names whose origin presents a broken certificate"),
}).describe("the profile's part of the lab world");

export const ProfileSchema = z.strictObject({
  $schema: z.string().optional().describe("the JSON Schema, for editors"),
  id: ID.describe("the profile's id (chokepoint list)"),
  title: z.string().min(1).describe("one line"),
  country: z.string().regex(/^[A-Z]{2}$/, "an ISO 3166-1 alpha-2 code such as KZ (ZZ for examples)").describe("ISO 3166-1 alpha-2 (ZZ for examples)"),
  timezone: z.string().min(1).describe("IANA name (Asia/Almaty) or offset (+06:00): local times and instants without an offset are in it"),
  period: z.strictObject({
    start: z.string().describe("when the regime began"),
    end: z.string().optional().describe("when it ended (absent: open)"),
  }).describe("when the regime was in force"),
  kind: z.enum(["event", "procedure"]).optional().describe("event (default): a dated regime, loaded by time travel; procedure: a capability with lab-relative windows, loaded only by name"),
  description: z.string().optional().describe("the story, in our words"),
  networks: z.array(ID).min(1).describe("the networks the rules target; the first is the default"),
  sources: z.array(ID).optional().describe("seed events the profile draws on"),
  confidence: Confidence.optional(),
  dpi: DpiSchema.optional(),
  world: WorldSchema.optional(),
  rules: z.array(RuleSchema).describe("the rules, in precedence order"),
  variants: z.record(ID, VariantSchema).optional().describe("alternative mechanisms, by name"),
  expect: z.array(ExpectSchema).optional().describe("what probes should observe (conformance checks it)"),
}).describe("a documented censorship regime");

export type ProfileDoc = z.infer<typeof ProfileSchema>;
export type RuleDoc = z.infer<typeof RuleSchema>;
export type MatchDoc = z.infer<typeof MatchSchema>;
export type WindowDoc = z.infer<typeof WindowSchema>;
export type DpiDoc = z.infer<typeof DpiSchema>;
export type ExpectDoc = z.infer<typeof ExpectSchema>;
export type ListFileDoc = z.infer<typeof ListFile>;

export { FINGERPRINT_NAMES, PROTOCOLS, SERVICES };
