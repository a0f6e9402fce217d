import { afterAll, describe, expect, it } from "vitest";
import { clientConforms, runConformance, conforms } from "../../src/conformance/run.js";
import { writeFiles } from "../helpers/profiles.js";

const PROFILE = `
id: conformance-check
title: a profile with one right and one wrong expectation
country: ZZ
timezone: UTC
period: { start: "2020-01-01" }
networks: [home, away]
rules:
  - { id: gone, match: { domain: gone.example }, networks: [home], action: nxdomain }
  - { id: page, match: { host: page.example }, action: { blockpage: { status: 408, body: "Request Time-out" } } }
  - { id: slow, match: { sni: slow.example }, action: { throttle: { rate: "16KB/s" } } }
expect:
  - { target: "https://gone.example/", networks: [home], observe: dns }
  - { target: "https://gone.example/", networks: [away], observe: "false" }
  - { target: "http://page.example/", networks: [home], observe: http-diff }
  - { target: "https://slow.example/", networks: [home], observe: throttled }
  - { target: "https://fine.example/", networks: [home], observe: tcp_ip, note: "wrong on purpose" }
`;

describe("conformance run", () => {
  const saved = process.env.CHOKEPOINT_PROFILES;
  afterAll(() => { if (saved === undefined) delete process.env.CHOKEPOINT_PROFILES; else process.env.CHOKEPOINT_PROFILES = saved; });

  it("measures each target per network and fails a row whose expectation does not hold", async () => {
    process.env.CHOKEPOINT_PROFILES = writeFiles({ "c.yaml": PROFILE });
    const all = await runConformance({ profiles: ["conformance-check"] });
    // Ordinary sites stay reachable on every network (no rule names them).
    const ordinary = all.filter((r) => r.target.endsWith("(ordinary)"));
    expect(ordinary).toHaveLength(2 * 7);
    expect(ordinary.every((r) => r.pass && r.observed === "false")).toBe(true);
    const rows = all.filter((r) => !r.target.endsWith("(ordinary)"));
    // Own probe, then dig + curl (+ openssl) as real clients: both must agree with `expect`.
    expect(rows.map((r) => [r.target, r.network, r.observed, r.client?.observed, r.pass])).toEqual([
      ["https://gone.example/", "home", "dns", "dns", true],
      ["https://gone.example/", "away", "false", "false", true],
      ["http://page.example/", "home", "http-diff", "http-diff", true],
      ["https://slow.example/", "home", "throttled", "throttled", true],
      ["https://fine.example/", "home", "false", "false", false],
    ]);
    expect(rows[2]!.detail).toBe("status 408");
    expect(rows[0]!.client).toMatchObject({ tool: "dig", detail: "dig: NXDOMAIN", pass: true });
    expect(rows[2]!.client!.detail).toBe("curl: status 408");
    expect(rows[4]!.client!.pass).toBe(false);
  }, 60_000);

  it("fails a regime whose fingerprint rule catches ordinary sites, and takes a profile file", async () => {
    const dir = writeFiles({ "f.yaml": `id: overbroad\ntitle: t\ncountry: ZZ\ntimezone: UTC\nperiod: { start: "2020-01-01" }\nnetworks: [home]\nrules:\n  - { id: all-tls, match: { fingerprint: tls }, action: rst }\nexpect:\n  - { target: "https://a.example/", observe: tls-reset }\n` });
    const rows = await runConformance({ profiles: [`${dir}/f.yaml`], clients: false });
    const ordinary = rows.filter((r) => r.target.endsWith("(ordinary)"));
    expect(ordinary.length).toBe(7);
    expect(ordinary.every((r) => !r.pass && r.observed === "tls-reset")).toBe(true);
  }, 60_000);

  it("matches the lab's synonyms", () => {
    expect(conforms("blockpage", { observed: "http-diff", detail: "status 451" })).toBe(true);
    expect(conforms("residual", { observed: "tls-timeout", detail: "then residual blocking (119 s left)" })).toBe(true);
    expect(conforms("residual", { observed: "tls-timeout", detail: "no residual blocking" })).toBe(false);
    expect(conforms("dns", { observed: "tcp_ip", detail: "" })).toBe(false);
    // A real client sees residual blocking as the failure it causes.
    expect(clientConforms("residual", { tool: "dig+curl", observed: "tls-timeout", detail: "" })).toBe(true);
    expect(clientConforms("residual", { tool: "dig+curl", observed: "false", detail: "" })).toBe(false);
    expect(clientConforms("blockpage", { tool: "dig+curl", observed: "http-diff", detail: "" })).toBe(true);
  });
});
