// Whether a Docker-API engine answers (DOCKER_HOST, else the default socket), and the
// compose command to use (`docker compose` v2, else docker-compose v1).
import { existsSync } from "node:fs";
import { run } from "../helpers/tools.js";

export async function engineProblem(): Promise<string | undefined> {
  if (!process.env.DOCKER_HOST && !existsSync("/var/run/docker.sock")) return "no Docker engine (DOCKER_HOST unset, no /var/run/docker.sock); .ci/run sets one up with ../shared/ci/container-engine.sh";
  const v = await run("docker", ["version", "--format", "{{.Server.Version}}"], { timeoutMs: 20_000 });
  if (v.code !== 0) return `the Docker engine does not answer: ${v.stderr.trim() || v.stdout.trim()}`;
  return undefined;
}

export async function composeCommand(): Promise<string[]> {
  if ((await run("docker", ["compose", "version"], { timeoutMs: 20_000 })).code === 0) return ["docker", "compose"];
  if ((await run("docker-compose", ["version"], { timeoutMs: 20_000 })).code === 0) return ["docker-compose"];
  throw new Error("neither `docker compose` nor docker-compose is installed");
}
