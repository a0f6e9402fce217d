// A seed: one documented event of the record, in our own words, with its sources.
import { z } from "zod";

/** Ids of seeds, profiles, rules and networks. */
export const ID = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, "ids are lower-case letters, digits, '.', '_' and '-'");
/** Confidence labels of the record (docs/regimes.md explains them). */
export const CONFIDENCE = ["P", "O", "N", "S", "U"] as const;

export const SourceSchema = z.strictObject({
  title: z.string().min(1),
  publisher: z.string().min(1),
  date: z.string().min(1),
  url: z.string().url().optional(),
  /** The seed document under shared/seeds this fact was taken from, if any. */
  document: z.string().optional(),
});

export const SeedSchema = z.strictObject({
  $schema: z.string().optional(),
  id: ID,
  title: z.string().min(1),
  when: z.strictObject({
    start: z.string(),
    end: z.string().optional(),
    /** True when the record gives only an approximate date or time. */
    approximate: z.boolean().optional(),
  }),
  timezone: z.string().min(1),
  where: z.string().min(1),
  networks: z.array(ID).optional(),
  what: z.string().min(1),
  mechanism: z.string().min(1),
  confidence: z.enum(CONFIDENCE),
  sources: z.array(SourceSchema).min(1),
});

export type SeedDoc = z.infer<typeof SeedSchema>;
