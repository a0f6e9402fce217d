// The profile schema: the one place where the shape of a profile is defined. Types are
// inferred from it, profiles/schema.json is generated from it (scripts/gen-schema.mjs),
// and validation (load.ts) adds the checks a schema cannot express (dates, time zones,
// duplicate ids, seed references, list files) with file:line:col positions.
import { z } from "zod";
import { CONFIDENCE, ID } from "../seeds/schema.js";
import { Duration, Probability } from "./values.js";
import { FINGERPRINT_NAMES, PROTOCOLS, SERVICES } from "./vocabulary.js";
import { MATCHER_NAMES, type MatcherName } from "./matchers.js";
import { ACTION_NAMES, PARAM_ACTIONS, SIMPLE_ACTIONS } from "./actions.js";

export { CONFIDENCE, ID };

const Confidence = z.enum(CONFIDENCE);

/** A list file: names (or addresses) loaded from disk, relative to the profile. */
const ListFile = z.strictObject({
  file: z.string().min(1),
  format: z.enum(["plain", "csv", "rpz"]).optional(),
  /** How bare names in the file match: exact name (default) or name plus all subdomains. */
  mode: z.enum(["exact", "suffix"]).optional(),
});
/** Names: "example.org" exact, ".example.org" the name and all subdomains, "*.example.org" subdomains only. */
const NameMatch = z.union([z.string().min(1), z.array(z.string().min(1)).min(1), ListFile]);
const IpMatch = z.union([z.string().min(1), z.array(z.string().min(1)).min(1), ListFile]);
const PortSpec = z.union([z.number().int().min(0).max(65535), z.string().regex(/^\d{1,5}-\d{1,5}$/, 'a port or a range "1000-2000"')]);
const KeywordMatch = z.union([
  z.string().min(1),
  z.array(z.string().min(1)).min(1),
  z.strictObject({ any: z.array(z.string().min(1)).min(1), ignoreCase: z.boolean().optional() }),
]);
const StrList = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);


export const MatchSchema = z
  .strictObject({
    domain: NameMatch.optional(),
    host: NameMatch.optional(),
    sni: NameMatch.optional(),
    url: StrList.optional(),
    keyword: KeywordMatch.optional(),
    ip: IpMatch.optional(),
    port: z.union([PortSpec, z.array(PortSpec).min(1)]).optional(),
    protocol: z.union([z.enum(PROTOCOLS), z.array(z.enum(PROTOCOLS)).min(1)]).optional(),
    fingerprint: StrList.optional(),
    service: z.union([z.enum(SERVICES), z.array(z.enum(SERVICES)).min(1)]).optional(),
    /** Matches everything the rule's networks send (a shutdown). */
    all: z.literal(true).optional(),
  } satisfies Record<MatcherName, z.ZodType>)
  .refine((m) => Object.values(m).some((v) => v !== undefined), { message: `match needs at least one matcher (${MATCHER_NAMES.join(", ")})` });

export { ACTION_NAMES, PARAM_ACTIONS, SIMPLE_ACTIONS };

/** An action: a bare word, or a one-key map of its parameters; both derived from the action table (actions.ts). */
export const ActionSchema = z.union([
  z.enum(SIMPLE_ACTIONS as [string, ...string[]]),
  ...Object.entries(PARAM_ACTIONS).map(([name, params]) => z.strictObject({ [name]: params as z.ZodType })),
] as unknown as [z.ZodType, z.ZodType, ...z.ZodType[]]);

export const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
export const WindowSchema = z
  .strictObject({
    /** Absolute bounds: with an offset, or wall-clock time in `timezone` (default: the profile's). */
    start: z.string().optional(),
    end: z.string().optional(),
    /** Every day between two local wall-clock times; crosses midnight when to < from. */
    daily: z.strictObject({ from: z.string(), to: z.string(), days: z.array(z.enum(DAYS)).min(1).optional() }).optional(),
    /** On for `on`, off for `off`, repeating from `anchor` (default: the window's or profile's start). */
    intermittent: z.strictObject({ on: Duration, off: Duration, anchor: z.string().optional() }).optional(),
    /** Relative to the instant the lab started (lab time), for CI fixtures. */
    relative: z.strictObject({ after: Duration.optional(), for: Duration.optional() }).optional(),
    timezone: z.string().optional(),
  })
  .refine((w) => w.start || w.end || w.daily || w.intermittent || w.relative, {
    message: "a window needs start/end, daily, intermittent or relative",
  });

export const ResidualSchema = z.strictObject({
  seconds: z.number().positive(),
  /** 3-tuple: client address, server address, server port; 4-tuple adds the client port. */
  key: z.enum(["3-tuple", "4-tuple"]).optional(),
  /** Each blocked retry restarts the timer (Kazakhstan 2021-24). */
  renew: z.boolean().optional(),
});

export const RuleSchema = z.strictObject({
  id: ID,
  description: z.string().optional(),
  match: MatchSchema,
  action: ActionSchema,
  window: z.union([WindowSchema, z.array(WindowSchema).min(1)]).optional(),
  /** Networks the rule applies to (default: all of the profile's); "*" for any network. */
  networks: z.array(z.union([ID, z.literal("*")])).min(1).optional(),
  seed: ID.optional(),
  confidence: Confidence.optional(),
  probability: Probability.optional(),
  residual: ResidualSchema.optional(),
});

export const DpiSchema = z.strictObject({
  /** first-segment: judge only the first chunk the client sent; reassemble: buffer up to limits. */
  inspect: z.enum(["first-segment", "reassemble"]).optional(),
  reassembleBytes: z.number().int().positive().optional(),
  reassembleTimeout: Duration.optional(),
  hostCase: z.enum(["insensitive", "sensitive"]).optional(),
  direction: z.enum(["client", "server", "both"]).optional(),
});

export const VariantSchema = z.strictObject({
  description: z.string().optional(),
  confidence: Confidence.optional(),
  /** Rules added, or replacing the base rule with the same id. */
  rules: z.array(RuleSchema).optional(),
  /** Base rule ids switched off in this variant. */
  disable: z.array(ID).optional(),
});

export const OBSERVATIONS = [
  "dns", "tcp_ip", "http-failure", "http-diff", "false",
  "tls-timeout", "tls-reset", "mitm", "throttled", "service-unavailable", "residual", "blockpage",
] as const;
export const ExpectSchema = z.strictObject({
  target: z.string().min(1),
  observe: z.enum(OBSERVATIONS),
  networks: z.array(ID).min(1).optional(),
  at: z.string().optional(),
  variant: z.string().optional(),
  note: z.string().optional(),
});

export const WorldSchema = z.strictObject({
  /** Names pinned to addresses ("*.wordpress.com": [...]), so that IP blocks hit what they hit. */
  hosts: z.record(z.string(), z.array(z.string().min(1)).min(1)).optional(),
  /** Names that do not exist (NXDOMAIN from the world itself). */
  nonexistent: z.array(z.string().min(1)).optional(),
  /** Names whose origin presents a broken certificate. */
  certs: z.record(z.string(), z.enum(["valid", "expired", "not-yet-valid", "wrong-name", "self-signed"])).optional(),
});

export const ProfileSchema = z.strictObject({
  $schema: z.string().optional(),
  id: ID,
  title: z.string().min(1),
  country: z.string().regex(/^[A-Z]{2}$/, "an ISO 3166-1 alpha-2 code such as KZ (ZZ for examples)"),
  timezone: z.string().min(1),
  period: z.strictObject({ start: z.string(), end: z.string().optional() }),
  /**
   * event (default): a dated regime of the record, loaded by time travel (--country --at);
   * procedure: a capability (a law's procedure) with lab-relative windows, loaded only by name.
   */
  kind: z.enum(["event", "procedure"]).optional(),
  description: z.string().optional(),
  networks: z.array(ID).min(1),
  sources: z.array(ID).optional(),
  confidence: Confidence.optional(),
  dpi: DpiSchema.optional(),
  world: WorldSchema.optional(),
  rules: z.array(RuleSchema),
  variants: z.record(ID, VariantSchema).optional(),
  expect: z.array(ExpectSchema).optional(),
});

export type ProfileDoc = z.infer<typeof ProfileSchema>;
export type RuleDoc = z.infer<typeof RuleSchema>;
export type MatchDoc = z.infer<typeof MatchSchema>;
export type WindowDoc = z.infer<typeof WindowSchema>;
export type DpiDoc = z.infer<typeof DpiSchema>;
export type ExpectDoc = z.infer<typeof ExpectSchema>;
export type ListFileDoc = z.infer<typeof ListFile>;

export { FINGERPRINT_NAMES, PROTOCOLS, SERVICES };
