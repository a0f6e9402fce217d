// npm run bench [-- SUITE...]: runs the named benchmark suites (all when none is named).
// Each suite is its own process (with --expose-gc for heap figures) and prints its figures
// as ratios against a baseline measured in the same run, medians of several runs.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const SUITES = { policy: "bench/policy.mjs", pki: "bench/pki.mjs", resolver: "bench/resolver.mjs", interceptor: "bench/interceptor.mjs", relay: "bench/relay.mjs", transparent: "bench/transparent.mjs", docker: "bench/docker.mjs", control: "bench/control.mjs", onpath: "bench/onpath.mjs", soak: "bench/soak.mjs" };
const asked = process.argv.slice(2);
// The soak (an hour by default) runs only when named: npm run bench -- soak.
const names = asked.length ? asked : Object.keys(SUITES).filter((n) => n !== "soak");
let failed = 0;
for (const name of names) {
  const file = SUITES[name];
  if (!file || !existsSync(file)) {
    console.error(`bench: unknown suite "${name}" (have: ${Object.keys(SUITES).join(", ")})`);
    process.exit(2);
  }
  console.log(`\n=== bench ${name} ===`);
  const r = spawnSync(process.execPath, ["--expose-gc", "--max-old-space-size=8192", file], { stdio: "inherit" });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
