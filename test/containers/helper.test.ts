// The testcontainers helper against the built images: a client behind the censor meets the
// profile, the explicit ports work from the host, the event log reads back.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../helpers/tools.js";
import { engineProblem } from "./engine.js";
import { ChokepointContainer, type StartedChokepointContainer } from "../../src/testcontainers/chokepoint-container.js";

const why = await engineProblem();

describe.skipIf(!!why)("ChokepointContainer (example-basics)", () => {
  let lab: StartedChokepointContainer;
  beforeAll(async () => { lab = await new ChokepointContainer().withProfile("example-basics").start(); });
  afterAll(async () => { await lab?.stop(); });

  it("a client container behind the censor: dig and curl meet the profile", async () => {
    const r = await lab.run(["sh", "-c", [
      "dig +short spoof.example.org @198.18.77.77",
      "dig +tcp nx.example.org @8.8.8.8 | grep -o 'status: [A-Z]*'",
      "curl -s -m 8 https://anything.example/ | grep -o '<h1>[^<]*</h1>'",
      "curl -s -o /dev/null -m 8 -w 'page %{http_code}\\n' http://page.example.org/",
      "curl -s -o /dev/null -m 5 -w 'unserved %{http_code} %{exitcode}\\n' http://198.18.99.99/; true",
    ].join("; ")]);
    expect(r.exitCode).toBe(0);
    expect(r.output).toMatch(/^198\.18\.0\.66$/m);
    expect(r.output).toContain("status: NXDOMAIN");
    expect(r.output).toContain("<h1>anything.example</h1>");
    expect(r.output).toContain("page 451");
    expect(r.output).toMatch(/unserved 000 (7|28|52|56)/); // nothing outside the lab world answers
  });

  it("the explicit-mode ports from the host: HTTP proxy, SOCKS5 and DNS over TCP", async () => {
    const dir = mkdtempSync(join(tmpdir(), "chokepoint-ca-"));
    writeFileSync(join(dir, "lab.pem"), lab.ca);
    const { httpProxy, socks, dns } = lab.endpoints;
    const viaProxy = await run("curl", ["-s", "-m", "8", "--cacert", join(dir, "lab.pem"), "-x", `http://${httpProxy.host}:${httpProxy.port}`, "https://anything.example/"]);
    expect(viaProxy.stdout).toContain("<h1>anything.example</h1>");
    const viaSocks = await run("curl", ["-s", "-m", "8", "--socks5-hostname", `${socks.host}:${socks.port}`, "http://anything.example/"]);
    expect(viaSocks.stdout).toContain("<h1>anything.example</h1>");
    const dig = await run("dig", ["+short", "+tcp", "-p", String(dns.port), `@${dns.host === "localhost" ? "127.0.0.1" : dns.host}`, "spoof.example.org"]);
    expect(dig.stdout.trim()).toBe("198.18.0.66");
  });

  it("the control API from the host, with the token: seek, status", async () => {
    // (Real time runs on after the seek: a few milliseconds past it.)
    expect(await lab.control("POST", "v1/clock", { seek: "2024-06-01T12:00:00Z" })).toMatchObject({ ok: true, labTime: expect.stringMatching(/^2024-06-01T12:00:0/) });
    expect(await lab.control("GET", "v1/status")).toMatchObject({ profiles: [{ id: "example-basics" }] });
    const { host, port } = lab.endpoints.control;
    expect((await fetch(`http://${host}:${port}/v1/status`)).status).toBe(401);
  });

  it("reads the event log back: the spoofed answer, with its rule", async () => {
    const e = await lab.waitForEvent((x) => x.component === "resolver" && x.rule === "dns-spoof");
    expect(e).toMatchObject({ action: "spoof", profile: "example-basics" });
    expect((await lab.events()).length).toBeGreaterThan(3);
  });
});

describe.skipIf(!!why)("ChokepointContainer with a box profile: the gateway on the on-path datapath (kz-2019-qaznet-mitm)", () => {
  let lab: StartedChokepointContainer;
  beforeAll(async () => {
    lab = await new ChokepointContainer().withProfile("kz-2019-qaznet-mitm").withAt("2019-07-20T12:00:00+06:00").withNetwork("kazakhtelecom-megaline").start();
  });
  afterAll(async () => { await lab?.stop(); });

  it("the box reads the client container's packets: an intercepted name gets the 2019 chain, another the world's", async () => {
    expect(await lab.control("GET", "v1/status")).toMatchObject({ datapath: "onpath" });
    const r = await lab.run(["sh", "-c", [
      "curl -skv -m 10 -o /dev/null https://www.facebook.com/ 2>&1 | grep -i 'issuer:'",
      "curl -skv -m 10 -o /dev/null https://www.example.kz/ 2>&1 | grep -i 'issuer:'",
    ].join("; ")]);
    expect(r.output).toMatch(/issuer:.*Security Certificate/);
    expect(r.output).toMatch(/issuer:.*chokepoint lab CA/);
    const status = await lab.control("GET", "v1/status") as { box: { takenOver: number; takeoverFailed: number; box: { judged: number } } };
    expect(status.box.takenOver, JSON.stringify(status.box)).toBeGreaterThanOrEqual(1);
    expect(status.box.takeoverFailed, JSON.stringify(status.box)).toBe(0);
    const e = await lab.waitForEvent((x) => x.component === "box" && x.rule === "qaznet-interception");
    expect(e).toMatchObject({ profile: "kz-2019-qaznet-mitm" });
  });
});
