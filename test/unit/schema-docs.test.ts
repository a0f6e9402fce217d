// Editors show a field's description on hover: every field of the generated profile schema has one.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ProfileSchema } from "../../src/profile/schema.js";

type Node = { properties?: Record<string, Node>; description?: string; anyOf?: Node[]; oneOf?: Node[]; items?: Node; additionalProperties?: Node | boolean };

function undescribed(n: Node, path: string, out: string[]): void {
  for (const [k, v] of Object.entries(n.properties ?? {})) {
    const inner = v.anyOf ?? v.oneOf;
    if (!v.description && !(inner && inner.every((x) => x.description))) out.push(`${path}.${k}`);
    undescribed(v, `${path}.${k}`, out);
  }
  for (const x of [...(n.anyOf ?? []), ...(n.oneOf ?? [])]) undescribed(x, path, out);
  if (n.items) undescribed(n.items, `${path}[]`, out);
  if (n.additionalProperties && typeof n.additionalProperties === "object") undescribed(n.additionalProperties, `${path}{}`, out);
}

describe("profiles/schema.json", () => {
  it("describes every field", () => {
    const json = z.toJSONSchema(ProfileSchema, { io: "input", unrepresentable: "any", target: "draft-2020-12" }) as Node;
    const out: string[] = [];
    undescribed(json, "profile", out);
    expect(out).toEqual([]);
  });
});
