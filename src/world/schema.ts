// World data files (world/*.yaml) and the world section of profiles share this shape.
import { z } from "zod";
import { ID } from "../profile/schema.js";

export const CERT_KINDS = ["valid", "expired", "not-yet-valid", "wrong-name", "self-signed"] as const;

export const WorldFileSchema = z.strictObject({
  $schema: z.string().optional(),
  id: ID,
  description: z.string().optional(),
  /** Names pinned to addresses: "name" exact, ".name" with subdomains, "*.name" subdomains only. */
  hosts: z.record(z.string(), z.array(z.string().min(1)).min(1)).optional(),
  /** Names that do not exist (NXDOMAIN), in the same notation. */
  nonexistent: z.array(z.string().min(1)).optional(),
  /** Names whose origin presents a broken certificate, for probes that test validation. */
  certs: z.record(z.string(), z.enum(CERT_KINDS)).optional(),
  /**
   * Messaging services the world stands in for: the names that are theirs (connections to
   * them carry the service, for `service` rules), and the chat endpoints whose connections on
   * the given ports reach the lab's relay.
   */
  services: z.partialRecord(z.enum(["whatsapp", "viber", "sms"]), z.strictObject({
    names: z.array(z.string().min(1)).min(1),
    chat: z.strictObject({
      names: z.array(z.string().min(1)).min(1),
      tcp: z.array(z.number().int().min(1).max(65535)).optional(),
      udp: z.array(z.number().int().min(1).max(65535)).optional(),
    }).optional(),
  })).optional(),
  /** Where each seed fact behind a pin comes from. */
  seeds: z.array(ID).optional(),
});
export type WorldFileDoc = z.infer<typeof WorldFileSchema>;
