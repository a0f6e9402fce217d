// Builds both images once for the suite (the helper then finds them in the engine's cache),
// tagged :local (compose) and :<version> (the testcontainers helper), and reports how long.
import { readFileSync } from "node:fs";
import { run } from "../helpers/tools.js";
import { engineProblem } from "./engine.js";

export default async function setup(): Promise<void> {
  const why = await engineProblem();
  if (why) { console.warn(`container tests skipped: ${why}`); return; }
  const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  for (const [name, file] of [["chokepoint", "docker/Dockerfile"], ["chokepoint-client", "docker/client.Dockerfile"]] as const) {
    const t0 = Date.now();
    const r = await run("docker", ["build", "-q", "-f", file, "-t", `${name}:local`, "-t", `${name}:${version}`, "."], { timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`docker build -f ${file} failed:\n${r.stderr}\n${r.stdout}`);
    console.log(`built ${name}:local in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}
