// Docker: image build times (cold: no layer cache, the base images present; warm: nothing
// changed) against the goals (cold < 3 min, warm: seconds), and how long the lab container
// takes to be ready against the same lab started on the host (medians of several runs).
// Needs a Docker-API engine (DOCKER_HOST); each step is bounded in time.
import { spawn } from "node:child_process";
import { goal, median, table } from "./lib.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);

function timed(cmd, args, { until, timeoutMs = 600_000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const timer = setTimeout(() => { c.kill("SIGKILL"); reject(new Error(`${cmd} ${args.join(" ")}: over ${timeoutMs} ms`)); }, timeoutMs);
    const seconds = () => Number(process.hrtime.bigint() - t0) / 1e9;
    const onData = (d) => {
      out += d;
      if (until && until.test(out)) { clearTimeout(timer); resolve({ seconds: seconds(), child: c }); }
    };
    c.stdout.on("data", onData);
    c.stderr.on("data", onData);
    c.on("exit", (code) => {
      clearTimeout(timer);
      if (until) reject(new Error(`${cmd} exited ${code} before ready:\n${out.slice(-2000)}`));
      else if (code === 0) resolve({ seconds: seconds() });
      else reject(new Error(`${cmd} ${args.join(" ")} exited ${code}:\n${out.slice(-2000)}`));
    });
  });
}

if ((await timed("docker", ["version"]).catch(() => undefined)) === undefined) {
  console.log("skipped: no Docker engine answers (set DOCKER_HOST; CI: eval \"$(bash ../shared/ci/container-engine.sh)\")");
  process.exit(0);
}

const rows = [];
const build = async (file, tag, cold) => (await timed("docker", ["build", "-q", ...(cold ? ["--no-cache"] : []), "-f", file, "-t", tag, "."])).seconds;
const labCold = await build("docker/Dockerfile", "chokepoint:bench", true);
const labWarm = median(await Promise.all([0].map(() => build("docker/Dockerfile", "chokepoint:bench", false))));
const clientCold = await build("docker/client.Dockerfile", "chokepoint-client:bench", true);
rows.push({ image: "lab (docker/Dockerfile)", "cold s": labCold.toFixed(1), "warm s": labWarm.toFixed(1) });
rows.push({ image: "client tools", "cold s": clientCold.toFixed(1), "warm s": (await build("docker/client.Dockerfile", "chokepoint-client:bench", false)).toFixed(1) });
table(rows);

// Ready: `up` printing its listeners, in the container (gateway mode) and on the host.
const ready = /Ctrl-C stops the lab/;
const inContainer = [], onHost = [];
for (let i = 0; i < RUNS; i++) {
  const name = `chokepoint-bench-${process.pid}-${i}`;
  const c = await timed("docker", ["run", "--rm", "--name", name, "--user", "root", "--cap-add", "NET_ADMIN", "-e", "PROFILE=kz-2011-wordpress", "-e", "GATEWAY=auto", "chokepoint:bench"], { until: ready, timeoutMs: 120_000 });
  inContainer.push(c.seconds);
  await timed("docker", ["rm", "-f", name]).catch(() => undefined);
  const h = await timed(process.execPath, ["bin/chokepoint.js", "up", "--profile", "kz-2011-wordpress", "--ports", "auto"], { until: ready, timeoutMs: 60_000 });
  onHost.push(h.seconds);
  h.child.kill("SIGTERM");
}
table([{ "lab ready": "in a container (gateway mode)", "s (median)": median(inContainer).toFixed(2) }, { "lab ready": "on the host (explicit)", "s (median)": median(onHost).toFixed(2) }]);
console.log(`ready time, container vs host: ${(median(inContainer) / median(onHost)).toFixed(2)}`);
await timed("docker", ["rmi", "chokepoint:bench", "chokepoint-client:bench"]).catch(() => undefined);
goal("lab image cold build < 180 s", labCold < 180, `${labCold.toFixed(0)} s`);
goal("lab image warm build < 10 s", labWarm < 10, `${labWarm.toFixed(1)} s`);
