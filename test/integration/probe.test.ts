// The control vantage (OONI's test-helper protocol on the control API) and the reference
// probe (`chokepoint probe`) against a real lab process: the helper answers from outside the
// censor even for a blocked target; the probe's OONI measurements name the failures OONI's
// probe would, and `chokepoint score` finds them all right.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { cli, exited, upJson } from "../helpers/cli.js";
import { run } from "../helpers/tools.js";
import { statSync } from "node:fs";
import { tempDir } from "../helpers/profiles.js";

const NET = "kazakhtelecom-megaline";
let child: ChildProcess;
let control: string;
let dir: string;
let events: string;

beforeAll(async () => {
  dir = tempDir();
  events = join(dir, "events.jsonl");
  const up = await upJson(["--profile", "kz-2024-tls-timeout", "--at", "2024-05-14T20:00", "--ports", "auto", "--events", events, "--control-socket", join(dir, "control.sock")]);
  child = up.child;
  const c = up.ready.endpoints.control!;
  control = `http://${c.host}:${c.port}`;
}, 30_000);

afterAll(async () => {
  child?.kill("SIGTERM");
  if (child) await exited(child);
});

const th = async (body: unknown, path = "/v1/th"): Promise<{ status: number; json: Record<string, any> }> => {
  const res = await fetch(`${control}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
};

describe("the control vantage (OONI's test helper)", () => {
  it("answers from outside the censor: a target blocked on every network loads, with its DNS, TCP, TLS and HTTP", async () => {
    const r = await th({ http_request: "https://meduza.io/", http_request_headers: { "User-Agent": ["x"] }, tcp_connect: ["198.19.1.1:443", "10.0.0.1:443"] });
    expect(r.status).toBe(200);
    const a = r.json;
    expect(a.dns.failure).toBeNull();
    expect(a.dns.addrs.length).toBeGreaterThan(0);
    const own = `${a.dns.addrs[0]}:443`;
    expect(a.tcp_connect[own]).toEqual({ status: true, failure: null });
    expect(a.tls_handshake[own]).toEqual({ server_name: "meduza.io", status: true, failure: null });
    expect(a.http_request).toMatchObject({ status_code: 200, failure: null, title: "meduza.io" });
    expect(a.http_request.body_length).toBeGreaterThan(100);
    // An address outside the lab world is not there for anyone (never connected to).
    expect(a.tcp_connect["10.0.0.1:443"]).toEqual({ status: false, failure: "host_unreachable" });
    expect(a.ip_info[a.dns.addrs[0]].flags & 2).toBe(2);
    // The same at OONI's path, a test helper's root.
    expect((await th({ http_request: "http://www.example.kz/" }, "/")).json.http_request.status_code).toBe(200);
  });

  it("says a name that does not exist is dns_name_error, and refuses bad requests with reasons", async () => {
    expect((await th({ http_request: "https://nothing.invalid/" })).json.dns).toEqual({ failure: "dns_name_error", addrs: [] });
    const bad = await th({ http_request: "ftp://x/" });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/http:\/\/ or https:\/\//);
    expect((await th({ http_request: "https://a.example/", tcp_connect: ["nope"] })).json.error).toMatch(/not an "ip:port"/);
    expect((await th({})).json.error).toMatch(/http_request/);
  });
});

describe("chokepoint probe", () => {
  it("writes OONI measurements with OONI's verdicts and failures, and score finds every one right", () => {
    const out = join(dir, "probe.jsonl");
    const r = cli(["probe", "--control", control, "--network", NET, "--out", out, "meduza.io", "https://www.pinterest.com/", "http://www.example.kz/"]);
    expect(r.stderr).toContain("[3/3]");
    expect(r.code).toBe(0);
    const ms = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, any>);
    expect(ms.map((m) => [m.input, m.test_name, m.test_keys.blocking, m.test_keys.http_experiment_failure])).toEqual([
      ["https://meduza.io/", "web_connectivity", "http-failure", "generic_timeout_error"],
      ["https://www.pinterest.com/", "web_connectivity", "http-failure", "ssl_unknown_authority"],
      ["http://www.example.kz/", "web_connectivity", false, null],
    ]);
    expect(ms[0]!.annotations).toMatchObject({ chokepoint_network: NET, chokepoint_tag: expect.stringMatching(/-1$/) });
    expect(ms[2]!.test_keys).toMatchObject({ accessible: true, dns_consistency: "consistent", status_code_match: true, body_length_match: true });
    expect(ms[0]!.test_keys.control.http_request.status_code).toBe(200);
    // The lab flushes its event log every 100 ms.
    const s = (): Record<string, any> => JSON.parse(cli(["score", "--events", events, "--json", "--min-recall", "1", out]).stdout);
    let scored = s();
    for (let i = 0; i < 10 && scored.right !== 3; i++) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200); scored = s(); }
    expect(scored).toMatchObject({ measurements: 3, right: 3, wrong: 0, unknown: 0 });
  });

  it("finds each wrong verdict planted in its OONI measurements, and classifies it", () => {
    const out = join(dir, "probe.jsonl");
    const planted = join(dir, "planted.jsonl");
    // A missed block, a block in the wrong class, a false positive.
    const plant: Record<string, unknown> = { "https://meduza.io/": false, "https://www.pinterest.com/": "dns", "http://www.example.kz/": "http-diff" };
    writeFileSync(planted, readFileSync(out, "utf8").trim().split("\n").map((l) => {
      const m = JSON.parse(l) as { input: string; test_keys: Record<string, unknown> };
      m.test_keys.blocking = plant[m.input];
      return JSON.stringify(m);
    }).join("\n"));
    const r = cli(["score", "--events", events, "--json", "--max-false-positive", "0", planted]);
    expect(r.code).toBe(1);
    const s = JSON.parse(r.stdout) as { wrong: number; confusion: Record<string, Record<string, number>>; rows: { target: string; result: string; verdict: unknown; truth: string }[] };
    expect(s.wrong).toBe(3);
    expect(s.rows.map((x) => [x.target, x.result, x.verdict, x.truth])).toEqual([
      ["https://meduza.io/", "wrong", "false", "http-failure"],
      ["https://www.pinterest.com/", "wrong", "dns", "http-failure"],
      ["http://www.example.kz/", "wrong", "http-diff", "false"],
    ]);
    expect(s.confusion["http-failure"]).toMatchObject({ false: 1, dns: 1 });
    expect(s.confusion.false).toMatchObject({ "http-diff": 1 });
    expect(r.stderr).toMatch(/threshold missed: false positives 100\.0% > 0\.0%/);
  });

  it("stops with a clear error for a network the lab does not have, and for no lab at all", () => {
    const r = cli(["probe", "--control", control, "--network", "nowhere", "meduza.io"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no network "nowhere" in the lab/);
    const none = cli(["probe", "--control", "http://127.0.0.1:9", "meduza.io"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9\/v1\/status/);
  });
});

describe("tagging a client's flows by its address, and the control API on a unix socket", () => {
  it("POST /v1/tag names the next flows of a client (what a probe in transparent mode uses); null clears it", async () => {
    const post = (b: unknown): Promise<Response> => fetch(`${control}/v1/tag`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(b) });
    expect((await post({ client: "127.0.0.1", tag: "by-address-1" })).status).toBe(200);
    await run("curl", ["-s", "-m", "3", "-k", "-o", "/dev/null", "--proxy", `socks5h://${NET}@127.0.0.1:${await socksPort()}`, "https://www.example.kz/"]);
    expect((await post({ client: "127.0.0.1", tag: null })).status).toBe(200);
    await run("curl", ["-s", "-m", "3", "-k", "-o", "/dev/null", "--proxy", `socks5h://${NET}@127.0.0.1:${await socksPort()}`, "https://www.example.kz/path-untagged"]);
    await new Promise((r) => setTimeout(r, 300)); // the batched events file
    const lines = readFileSync(events, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>).filter((e) => e.observation?.sni === "www.example.kz");
    expect(lines.some((e) => e.tag === "by-address-1")).toBe(true);
    expect(lines.at(-1)!.tag).toBeUndefined();
    const bad = await post({ client: "not-an-address", tag: "x" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/client must be the client's IP address/);
    expect((await post({ client: "127.0.0.1", tag: "has space" })).status).toBe(400);
  });

  it("the CLI and the probe reach the API through the unix socket, which only its owner may open", () => {
    const sock = join(dir, "control.sock");
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    const st = cli(["status", "--control", `unix:${sock}`, "--json"]);
    expect(st.code).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({ network: NET });
    const r = cli(["probe", "--control", `unix:${sock}`, "--network", NET, "http://www.example.kz/"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ test_keys: { blocking: false, accessible: true } });
  });
});

describe("a control socket beside the lab's other endpoints", () => {
  it("is listed by up, and does not trip the code that walks the endpoints (the egress guard's own listeners)", async () => {
    const d = tempDir();
    const sock = join(d, "c.sock");
    const up = await upJson(["--profile", "example-basics", "--world", "internet", "--ports", "auto", "--control-socket", sock]);
    try {
      expect(up.ready.endpoints).toMatchObject({ controlSocket: sock });
      const socks = up.ready.endpoints.socks!;
      // A destination the guard refuses before connecting (a private address): it walks the lab's endpoints.
      const r = await run("curl", ["-sS", "-m", "3", "--socks5-hostname", `127.0.0.1:${socks.port}`, "http://10.0.0.1/"]);
      expect(r.code).not.toBe(0);
      expect(cli(["status", "--control", `unix:${sock}`, "--json"]).code).toBe(0); // still up
    } finally {
      up.child.kill("SIGTERM");
      await exited(up.child);
    }
  });
});

async function socksPort(): Promise<number> {
  const st = (await (await fetch(`${control}/v1/status`)).json()) as { endpoints: { socks: { port: number } } };
  return st.endpoints.socks.port;
}
