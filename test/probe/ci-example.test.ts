// The CI example a probe author copies (docs/examples/ci/probe-score.sh, which the GitHub
// Actions and GitLab CI examples call) run as written: with the reference probe it passes
// its thresholds; with a probe that calls everything accessible it fails the job.
import { describe, expect, it } from "vitest";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, ROOT } from "../helpers/cli.js";
import { run } from "../helpers/tools.js";

const SCRIPT = join(ROOT, "docs", "examples", "ci", "probe-score.sh");

function setup(): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = mkdtempSync(join(tmpdir(), "chokepoint-ci-"));
  writeFileSync(join(dir, "targets.txt"), "# the probe's list\nmeduza.io\nhttps://www.pinterest.com/\nwww.example.kz\nhttp://www.example.kz/\n");
  return { dir, env: { ...process.env, NO_COLOR: "1", CHOKEPOINT: `${process.execPath} ${BIN}`, TARGETS: join(dir, "targets.txt"), OUT: join(dir, "out") } };
}

describe("the CI example (docs/examples/ci)", () => {
  it("passes with the reference probe: every result right", async () => {
    const { dir, env } = setup();
    const r = await run("bash", [SCRIPT], { env, timeoutMs: 90_000 });
    expect(r.stderr).toContain("lab up: kz-2024-tls-timeout");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("4 measurements: 4 right, 0 wrong, 0 without ground truth");
    expect(readFileSync(join(dir, "out", "results.jsonl"), "utf8").trim().split("\n")).toHaveLength(4);
  });

  it("fails the job for a probe that misses the blocks, and says which threshold", async () => {
    const { dir, env } = setup();
    // A probe that measures (the reference probe) but reports everything accessible.
    const probe = join(dir, "blind-probe");
    writeFileSync(probe, `#!/bin/sh
set -e
${process.execPath} ${BIN} probe "$@"
while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
sed -i 's/"blocking":"[a-z_-]*"/"blocking":false/' "$out"
`);
    chmodSync(probe, 0o755);
    const r = await run("bash", [SCRIPT], { env: { ...env, PROBE: probe }, timeoutMs: 90_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/threshold missed: recall 0\.0% < 95\.0%/);
  });
});
