// chokepoint score against a real lab: a probe (the lab's own measuring code, through the
// SOCKS entry) measures targets while the lab logs its decisions; its verdicts, written as
// plain JSON Lines and as OONI measurements, are scored against that log. Then the same
// measurements with wrong verdicts: counted wrong, and the CLI's thresholds fail.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startLab, type Lab } from "../../src/index.js";
import { labCaName, measureUrl } from "../../src/probe/measure.js";
import { cli } from "../helpers/cli.js";
import { run } from "../helpers/tools.js";
import { tempDir } from "../helpers/profiles.js";
import { readEvents, score } from "../../src/probe/score.js";
import { readMeasurements } from "../../src/probe/score.js";

const TARGETS = ["https://meduza.io/", "https://www.pinterest.com/", "https://www.example.kz/", "https://www.change.org/"];
const NET = "kazakhtelecom-megaline";
/** The lab's words for what it measured, as OONI's blocking. */
const OONI: Record<string, string | false> = { "tls-timeout": "http-failure", "tls-reset": "http-failure", mitm: "http-failure", false: false, dns: "dns", tcp_ip: "tcp_ip" };

let lab: Lab;
let dir: string;
let events: string;
const measured: { target: string; time: string; verdict: string }[] = [];

beforeAll(async () => {
  dir = tempDir();
  events = join(dir, "events.jsonl");
  lab = await startLab({ profiles: ["kz-2024-tls-timeout"], at: "2024-05-14T20:00", ports: "auto", events });
  for (const target of TARGETS) {
    const time = new Date().toISOString();
    const m = await measureUrl({ lab, network: NET, labCaName: labCaName(lab), throughput: false }, new URL(target));
    measured.push({ target, time, verdict: m.observed });
  }
  // A probe that tags its flows: the SOCKS username "NETWORK+TAG".
  await run("curl", ["-s", "-m", "3", "-k", "-o", "/dev/null", "--proxy", `socks5h://${NET}+m-42:x@127.0.0.1:${lab.endpoints.socks!.port}`, "https://www.change.org/"]);
  await lab.stop(); // flushes the event log
}, 60_000);

afterAll(async () => { await lab?.stop(); });

describe("chokepoint score", () => {
  it("a correct probe scores 100%, in plain JSON Lines and as OONI measurements", () => {
    expect(measured.map((m) => m.verdict)).toEqual(["tls-timeout", "mitm", "false", "tls-timeout"]);
    const plain = join(dir, "plain.jsonl");
    writeFileSync(plain, measured.map((m) => JSON.stringify({ ...m, network: NET })).join("\n"));
    const s = score(readMeasurements(plain), readEvents(events).events);
    expect(s).toMatchObject({ measurements: 4, right: 4, wrong: 0, unknown: 0, precision: 1, recall: 1, falsePositiveRate: 0 });
    expect(s.confusion["http-failure"]["http-failure"]).toBe(3);
    expect(s.rows[0]).toMatchObject({ truth: "http-failure", rule: "blocked-news" });
    // The same as OONI web_connectivity measurements (one JSON document a line, as ooniprobe writes).
    const ooni = join(dir, "ooni.jsonl");
    writeFileSync(ooni, measured.map((m) => JSON.stringify({
      test_name: "web_connectivity", input: m.target, measurement_start_time: m.time.replace("T", " ").replace(/\.\d+Z$/, ""), test_runtime: 2.5,
      annotations: { chokepoint_network: NET }, test_keys: { blocking: OONI[m.verdict], accessible: m.verdict === "false" },
    })).join("\n"));
    const cliRun = cli(["score", "--events", events, "--json", "--min-recall", "1", "--max-false-positive", "0", ooni]);
    expect(cliRun.code).toBe(0);
    expect(JSON.parse(cliRun.stdout)).toMatchObject({ right: 4, wrong: 0, recall: 1 });
  });

  it("a wrong probe is caught: a missed block, a false positive, thresholds that fail CI", () => {
    const bad = join(dir, "bad.csv");
    const flip: Record<string, string> = { "https://meduza.io/": "false", "https://www.example.kz/": "tls-timeout" };
    writeFileSync(bad, ["target,time,network,verdict", ...measured.map((m) => `${m.target},${m.time},${NET},${flip[m.target] ?? m.verdict}`)].join("\n"));
    const r = cli(["score", "--events", events, "--min-recall", "0.9", "--max-false-positive", "0.1", bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/4 measurements: 2 right, 2 wrong, 0 without ground truth/);
    expect(r.stdout).toMatch(/wrong\s+https:\/\/meduza\.io\/ on kazakhtelecom-megaline .*said false, truth http-failure/);
    expect(r.stderr).toMatch(/threshold missed: recall 66\.7% < 90\.0%; false positives 100\.0% > 10\.0%/);
  });

  it("pairs by tag: every event of a tagged flow carries it, and a tagged measurement is scored by its own flows", () => {
    const tagged = readEvents(events).events.filter((e) => e.tag === "m-42");
    expect(tagged.length).toBeGreaterThanOrEqual(1);
    expect(tagged[0]).toMatchObject({ component: "interceptor", action: "drop", observation: { sni: "www.change.org" } });
    const file = join(dir, "tagged.jsonl");
    // The time is off by an hour (a probe with a bad clock): the tag still pairs it.
    writeFileSync(file, JSON.stringify({ target: "https://www.change.org/", time: new Date(Date.now() - 3_600_000).toISOString(), network: NET, verdict: "tls-timeout", tag: "m-42" }));
    expect(score(readMeasurements(file), readEvents(events).events)).toMatchObject({ right: 1, unknown: 0 });
    expect(cli(["score", "--events", events, file]).stdout).toMatch(/right\s+https:\/\/www\.change\.org\//);
  });

  it("leaves out other OONI tests from one ooniprobe file, and says how many", () => {
    const mixed = join(dir, "mixed.jsonl");
    writeFileSync(mixed, [
      JSON.stringify({ test_name: "whatsapp", input: null, measurement_start_time: "2024-05-14 15:00:00", test_keys: { whatsapp_endpoints_status: "ok" } }),
      JSON.stringify({ test_name: "web_connectivity", input: measured[0]!.target, measurement_start_time: measured[0]!.time.replace("T", " ").replace(/\.\d+Z$/, ""), annotations: { chokepoint_network: NET }, test_keys: { blocking: "http-failure" } }),
    ].join("\n"));
    const r = cli(["score", "--events", events, "--json", mixed]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ measurements: 1, right: 1 });
    expect(r.stderr).toMatch(/not scored \(score reads web_connectivity.*\): 1 whatsapp/);
  });

  it("no ground truth outside the measurement's span or on another network; clear errors for bad input", () => {
    const elsewhere = join(dir, "elsewhere.jsonl");
    writeFileSync(elsewhere, [
      JSON.stringify({ target: "https://meduza.io/", time: "2020-01-01T00:00:00Z", network: NET, verdict: "http-failure" }),
      JSON.stringify({ target: "https://meduza.io/", time: measured[0]!.time, network: "beeline-fixed", verdict: "http-failure" }),
    ].join("\n"));
    const s = score(readMeasurements(elsewhere), readEvents(events).events);
    expect(s).toMatchObject({ unknown: 2, right: 0, wrong: 0 });
    const junk = join(dir, "junk.jsonl");
    writeFileSync(junk, `${JSON.stringify({ target: "https://meduza.io/", time: measured[0]!.time, verdict: "maybe" })}\n`);
    expect(cli(["score", "--events", events, junk]).stderr).toMatch(/junk\.jsonl:1: verdict "maybe" is not one of OONI's blocking classes/);
    expect(cli(["score", junk]).stderr).toMatch(/--events FILE: the lab's event log to score against/);
    expect(cli(["score", "--events", events, "--min-recall", "2", junk]).stderr).toMatch(/--min-recall takes a fraction from 0 to 1, got "2"/);
  });
});
