import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { loadProfile, type LoadOptions } from "../../src/profile/load.js";
import type { Profile } from "../../src/profile/model.js";
import { formatError } from "../../src/util/yaml-source.js";

export function tempDir(prefix = "chokepoint-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes `files` (name -> text) into a fresh directory; returns the directory. */
export function writeFiles(files: Record<string, string>): string {
  const dir = tempDir();
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

/** Loads a profile from YAML text; throws with the positioned errors when invalid. */
export function profileFrom(yaml: string, opts: LoadOptions = {}, extra: Record<string, string> = {}): Profile {
  const dir = writeFiles({ "profile.yaml": yaml, ...extra });
  const r = loadProfile(join(dir, "profile.yaml"), opts);
  if (!r.profile) throw new Error(r.errors.map(formatError).join("\n"));
  return r.profile;
}

export const HEADER = `
id: t
title: test
country: ZZ
timezone: UTC
period: { start: "2000-01-01" }
networks: [net-a, net-b]
`;
