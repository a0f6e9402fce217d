// Writes profiles/schema.json (for editors: YAML language server), seeds/ and world/schema.json
// from the zod schemas in dist/, the one place they are defined.
import { writeFileSync } from "node:fs";
import { z } from "zod";
import { ProfileSchema } from "../dist/profile/schema.js";
import { SeedSchema } from "../dist/seeds/schema.js";
import { WorldFileSchema } from "../dist/world/schema.js";

const render = (schema, title, id) => {
  const json = z.toJSONSchema(schema, { io: "input", unrepresentable: "any", target: "draft-2020-12" });
  return `${JSON.stringify({ ...json, $id: id, title }, null, 2)}\n`;
};
writeFileSync(new URL("../profiles/schema.json", import.meta.url), render(ProfileSchema, "chokepoint profile", "https://chokepoint.invalid/schema/profile.json"));
writeFileSync(new URL("../seeds/schema.json", import.meta.url), render(SeedSchema, "chokepoint seed", "https://chokepoint.invalid/schema/seed.json"));
writeFileSync(new URL("../world/schema.json", import.meta.url), render(WorldFileSchema, "chokepoint world", "https://chokepoint.invalid/schema/world.json"));
