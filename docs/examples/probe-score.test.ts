// An example of a probe author's CI test (vitest here; any runner works): start the lab with
// its event log, run your probe through the lab's entry, then score the probe's verdicts
// against what the censor did. `npm i -D chokepoint`; the probe here is curl, standing in
// for yours: it tags each measurement through the SOCKS username (NETWORK+TAG).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readEvents, score, startLab, type Lab, type Measurement } from "chokepoint";

const NETWORK = "kazakhtelecom-megaline";

/** "My probe": one HTTPS fetch, and the verdict it reaches (OONI's blocking classes). Asynchronous: the lab runs in this process. */
async function myProbe(lab: Lab, url: string, tag: string): Promise<Measurement> {
  const start = Date.now();
  let verdict: Measurement["verdict"] = "false";
  try {
    await promisify(execFile)("curl", ["-s", "-o", "/dev/null", "-m", "6", "-k", "--proxy", `socks5h://${NETWORK}+${tag}:x@127.0.0.1:${lab.endpoints.socks!.port}`, url]);
  } catch {
    verdict = "http-failure"; // a timeout or a reset after the connection: what OONI calls http-failure
  }
  return { target: url, start, network: NETWORK, verdict, tag, source: tag };
}

describe("my probe against the 2023-24 Kazakh TLS blocking", () => {
  let lab: Lab;
  const events = join(mkdtempSync(join(tmpdir(), "my-probe-")), "events.jsonl");
  const results: Measurement[] = [];

  beforeAll(async () => {
    lab = await startLab({ profiles: ["kz-2024-tls-timeout"], at: "2024-05-14T20:00", ports: "auto", events });
    for (const [i, url] of ["https://meduza.io/", "https://www.example.kz/", "https://www.change.org/"].entries()) results.push(await myProbe(lab, url, `m${i}`));
    await lab.stop(); // writes out the event log
  }, 60_000);
  afterAll(async () => { await lab?.stop(); });

  it("gets every verdict right (recall 100%, no false positives)", () => {
    const s = score(results, readEvents(events).events);
    expect(s.unknown).toBe(0);
    expect(s.wrong, JSON.stringify(s.rows.filter((r) => r.result === "wrong"))).toBe(0);
    expect(s.recall).toBe(1);
    expect(s.falsePositiveRate).toBe(0);
  });
});
