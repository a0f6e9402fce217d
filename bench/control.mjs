// Control API: what a live view or a test streaming every decision over SSE costs the lab.
// Decisions per second (lab.decide, which records each event) with an events file as the
// only reader, against the same with an SSE subscriber on /v1/events reading everything;
// and the stream's delay from decision to the subscriber (medians of several runs).
import { startLab } from "../dist/index.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { goal, median, percentile, table } from "./lib.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const N = Number(process.env.BENCH_DECISIONS ?? 50_000);
const dir = mkdtempSync(join(tmpdir(), "chokepoint-bench-control-"));
process.env.CHOKEPOINT_CONFDIR = join(dir, "conf");
const lab = await startLab({ profiles: ["example-basics"], at: "2024-01-01T12:00:00Z", events: join(dir, "events.jsonl") });
const base = `http://127.0.0.1:${lab.endpoints.control.port}`;
const obs = { name: "spoof.example.org", qtype: "A" };

/** Decisions per second over N decisions, yielding to the event loop every 500 (as real traffic does). */
async function burst() {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    lab.decide(obs);
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
  return N / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/** An SSE subscriber that counts decisions and notes how long each took to arrive. */
async function subscribe() {
  const ac = new AbortController();
  const res = await fetch(`${base}/v1/events`, { signal: ac.signal });
  const delays = [];
  let received = 0, buf = "";
  const reading = (async () => {
    try {
      for await (const chunk of res.body) {
        buf += Buffer.from(chunk).toString("utf8");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const m = /^data: (.*)$/m.exec(block);
          if (!m) continue;
          received++;
          if (received % 100 === 0) delays.push(Date.now() - Date.parse(JSON.parse(m[1]).ts));
        }
      }
    } catch { /* aborted */ }
  })();
  return { get received() { return received; }, delays, stop: async () => { ac.abort(); await reading; } };
}

const plain = [], streamed = [], lag = [];
let lost = 0;
for (let r = 0; r < RUNS; r++) {
  plain.push(await burst());
  const sub = await subscribe();
  await new Promise((res) => setTimeout(res, 100));
  const before = sub.received;
  streamed.push(await burst());
  const until = Date.now() + 10_000;
  while (sub.received - before < N && Date.now() < until) await new Promise((res) => setTimeout(res, 20));
  lost += N - (sub.received - before);
  lag.push(...sub.delays);
  await sub.stop();
}
await lab.stop();
rmSync(dir, { recursive: true, force: true });
table([
  { reader: "events file only", "decisions/s (median)": Math.round(median(plain)) },
  { reader: "events file + SSE subscriber", "decisions/s (median)": Math.round(median(streamed)) },
]);
console.log(`SSE delay decision -> subscriber: p50 ${percentile(lag, 50)} ms, p99 ${percentile(lag, 99)} ms; events not delivered: ${lost}`);
const ratio = median(streamed) / median(plain);
goal("decisions/s with an SSE subscriber >= 0.5 of without", ratio >= 0.5, ratio.toFixed(2));
goal("every decision reaches the subscriber", lost === 0, `${lost} missing`);
