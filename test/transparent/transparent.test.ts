// Transparent mode with real, unmodified tools: they run in a client namespace with no proxy
// setting, and the censor is simply on the path. Root only: skipped with a message elsewhere.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { BIN, exited } from "../helpers/cli.js";
import { run } from "../helpers/tools.js";
import { preflight, existingNamespaces } from "../../src/transparent/topology.js";

const why = await preflight();
if (why) console.warn(`transparent-mode tests skipped: ${why}`);
const CA = join(process.env.CHOKEPOINT_CONFDIR!, "ca", "lab.pem");

/** `chokepoint exec` as a real process; its stdout, stderr and exit code. */
function exec(args: string[], cmd: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(process.execPath, [BIN, "exec", ...args, "--", ...cmd], { timeoutMs: 60_000 });
}

/** Nothing of the lab is left: no namespace (their veths and nft tables go with them), no process. */
async function nothingLeft(): Promise<void> {
  expect(await existingNamespaces()).toEqual([]);
  const links = await run("ip", ["-o", "link", "show"]);
  expect(links.stdout).not.toMatch(/\bcp[crw]\d+/);
  const ps = await run("pgrep", ["-f", "transparent-plan"]);
  expect(ps.stdout.trim()).toBe("");
}

describe.skipIf(!!why)("transparent mode (root)", () => {
  beforeAll(async () => {
    await run(process.execPath, [BIN, "down"]);
    // The lab CA, made before any lab runs in a namespace (the same config directory).
    await run(process.execPath, [BIN, "ca", "path"]);
  });
  afterAll(async () => { await run(process.execPath, [BIN, "down"]); });

  it("curl gets the world's page over HTTPS with no proxy setting; exec forwards the exit code and cleans up", async () => {
    const r = await exec(["--profile", "example-basics"], ["curl", "-s", "-m", "5", "https://anything.example/", "--cacert", CA]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("<h1>anything.example</h1>");
    await nothingLeft();
    // IPv4 and IPv6, HTTP too; a blocked SNI is reset (curl 35), and exec exits with curl's code.
    const v4 = await exec(["--profile", "example-basics"], ["curl", "-s", "-4", "-m", "5", "http://anything.example/"]);
    expect(v4.stdout).toContain("<h1>anything.example</h1>");
    const reset = await exec(["--profile", "example-basics"], ["curl", "-s", "-m", "5", "https://reset.example.org/", "--cacert", CA]);
    expect(reset.code).toBe(35);
    await nothingLeft();
  });

  it("dig to any resolver address, UDP and TCP, v4 and v6, is answered by the censor", async () => {
    const script = [
      "dig +short +time=2 +tries=1 spoof.example.org @198.18.77.77",
      "dig +short +tcp +time=2 +tries=1 spoof.example.org @198.18.77.77",
      "dig +short +time=2 +tries=1 spoof.example.org @2001:db8:77::77",
      "dig +time=2 +tries=1 nx.example.org @198.18.77.77 | grep -o 'status: [A-Z]*'",
    ].join("; ");
    const r = await exec(["--profile", "example-basics"], ["sh", "-c", script]);
    expect(r.stdout.split("\n").filter(Boolean)).toEqual(["198.18.0.66", "198.18.0.66", "198.18.0.66", "status: NXDOMAIN"]);
  });

  it("fails closed: an address the world does not serve is unreachable, and nothing is forwarded", async () => {
    // 198.18.99.99 is unassigned: the censor has no route to it (and no default route at all).
    const r = await exec(["--profile", "example-basics"], ["sh", "-c",
      "curl -s -m 3 http://198.18.99.99/; echo tcp=$?; ping -c 1 -W 1 198.18.99.99 >/dev/null 2>&1; echo icmp=$?"]);
    // 55 as well as 52/56: a reset after the handshake lands before, during or after curl's send.
    expect(r.stdout).toMatch(/tcp=(7|28|52|55|56)\n/);
    expect(r.stdout).toContain("icmp=1");
    expect(r.stdout).not.toContain("<h1>");
  });

  it("address rules act in the kernel: the SYN to a dropped address times out, a reset variant refuses, www loads", async () => {
    const args = ["--profile", "kz-2011-wordpress", "--network", "kazakhtelecom-megaline", "--at", "2011-06-20T12:00:00+06:00"];
    const script = "curl -sv -m 3 http://someblog.wordpress.com/ 2>&1 | grep -c 'Connected to'; curl -s -m 3 http://someblog.wordpress.com/ >/dev/null; echo blog=$?; "
      + "curl -s -m 3 http://www.wordpress.com/ | grep -c '<h1>www.wordpress.com</h1>'";
    const drop = await exec(args, ["sh", "-c", script]);
    // No "Connected to": the handshake itself timed out (28), as on the censored network.
    expect(drop.stdout.split("\n").filter(Boolean)).toEqual(["0", "blog=28", "1"]);
    const rst = await exec([...args, "--variant", "rst"], ["sh", "-c", "curl -s -m 3 http://someblog.wordpress.com/; echo blog=$?"]);
    expect(rst.stdout).toContain("blog=7");
    // Beeline customers were not affected.
    const beeline = await exec(["--profile", "kz-2011-wordpress", "--network", "beeline-fixed", "--at", "2011-06-20T12:00:00+06:00"], ["curl", "-s", "-m", "3", "http://someblog.wordpress.com/"]);
    expect(beeline.stdout).toContain("<h1>someblog.wordpress.com</h1>");
  });

  it("UDP to Viber's ports reaches the relay, which judges it on the sender's network (13 February 2014)", async () => {
    // Two subscribers on one Almaty mobile network, talking JSON frames (docs/relay.md) over
    // UDP to a Viber address and port; what comes back comes from that address.
    const script = `
      const dgram = require("node:dgram");
      const a = dgram.createSocket("udp4"), b = dgram.createSocket("udp4");
      const out = (s, f) => s.send(JSON.stringify(f), 7985, "198.18.61.10");
      const seen = [];
      b.on("message", (m, r) => { const f = JSON.parse(m); seen.push(f.type + (f.type === "registered" ? ":" + f.network : "") + "@" + r.address + ":" + r.port); });
      a.on("message", () => {});
      out(a, { type: "register", number: "+77010000001" });
      out(b, { type: "register", number: "+77010000002" });
      setTimeout(() => out(a, { type: "send", id: "1", to: "+77010000002", text: "hi" }), 300);
      setTimeout(() => { console.log(seen.join(" ")); process.exit(0); }, 2000);`;
    const at = (t: string) => exec(["--profile", "kz-2014-02-13-almaty-messaging", "--network", "kcell-almaty-mobile", "--at", t], [process.execPath, "-e", script]);
    const before = await at("2014-02-13T16:30:00+06:00");
    expect(before.stdout.trim()).toBe("registered:kcell-almaty-mobile@198.18.61.10:7985 message@198.18.61.10:7985");
    const during = await at("2014-02-13T17:30:00+06:00");
    expect(during.stdout.trim()).toBe("registered:kcell-almaty-mobile@198.18.61.10:7985");
  });

  it.skipIf(!existsSync("/usr/bin/chromium"))("a headless browser (Debian chromium) shows the block page, with a screenshot", async () => {
    const dir = mkdtempSync(join(tmpdir(), "chokepoint-shot-"));
    const shot = join(dir, "blockpage.png");
    const flags = "--headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking --window-size=800,600";
    const r = await exec(["--profile", "example-basics"], ["sh", "-c",
      `chromium ${flags} --dump-dom http://page.example.org/ 2>/dev/null; chromium ${flags} --screenshot=${shot} http://page.example.org/ >/dev/null 2>&1; echo done`]);
    expect(r.stdout).toContain("Blocked by order");
    const png = readFileSync(shot);
    expect(png.subarray(1, 4).toString("latin1")).toBe("PNG");
    expect(png.length).toBeGreaterThan(1000);
  });

  it("openssl s_client sees the ISCA issuer on an intercepted name in 2024 (a real regime, a named network)", async () => {
    const r = await exec(["--profile", "kz-2024-tls-timeout", "--network", "beeline-fixed", "--at", "2024-01-15T12:00:00+06:00"],
      ["sh", "-c", "openssl s_client -connect www.pinterest.com:443 -servername www.pinterest.com </dev/null 2>/dev/null | grep '^issuer='"]);
    expect(r.stdout).toMatch(/issuer=.*CN ?= ?Information Security Certification Authority/);
  });

  it("the reference probe in a network's namespace (transparent entry, tagged through the control socket) is scored 100% right", async () => {
    const dir = mkdtempSync(join(tmpdir(), "chokepoint-tprobe-"));
    const events = join(dir, "events.jsonl"), out = join(dir, "probe.jsonl");
    // kz-2024 runs on its default datapath here: the on-path box.
    const r = await exec(["--profile", "kz-2024-tls-timeout", "--network", "kazakhtelecom-megaline", "--at", "2024-05-14T20:00:00+05:00", "--events", events],
      [process.execPath, BIN, "probe", "--out", out, "meduza.io", "https://www.pinterest.com/", "http://www.example.kz/"]);
    expect(r.stderr).toContain("[3/3]");
    expect(r.code).toBe(0);
    const ms = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { input: string; test_keys: { blocking: unknown; http_experiment_failure: unknown; socksproxy: unknown } });
    expect(ms.map((m) => [m.input, m.test_keys.blocking, m.test_keys.http_experiment_failure])).toEqual([
      ["https://meduza.io/", "http-failure", "generic_timeout_error"],
      ["https://www.pinterest.com/", "http-failure", "ssl_unknown_authority"],
      ["http://www.example.kz/", false, null],
    ]);
    expect(ms[0]!.test_keys.socksproxy).toBeNull();
    const tagged = readFileSync(events, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { tag?: string }).filter((e) => e.tag);
    expect(tagged.length).toBeGreaterThan(0); // the tags reach the log (how many: the box logs decided flows, the resolver every query)
    const s = await run(process.execPath, [BIN, "score", "--events", events, "--json", out]);
    expect(JSON.parse(s.stdout)).toMatchObject({ measurements: 3, right: 3, wrong: 0, unknown: 0 });
  });

  it("up --transparent keeps the namespaces until SIGTERM, then removes everything", async () => {
    const child = spawn(process.execPath, [BIN, "up", "--transparent", "--json", "--profile", "example-basics"], { stdio: ["ignore", "pipe", "pipe"] });
    const ready = await new Promise<{ namespaces: Record<string, string> }>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => { out += d.toString(); const nl = out.indexOf("\n"); if (nl >= 0) resolve(JSON.parse(out.slice(0, nl))); });
      child.once("exit", (c) => reject(new Error(`exited ${c}`)));
    });
    const ns = ready.namespaces.default!;
    const r = await run("ip", ["netns", "exec", ns, "curl", "-s", "-m", "5", "https://anything.example/", "--cacert", CA]);
    expect(r.stdout).toContain("<h1>anything.example</h1>");
    child.kill("SIGTERM");
    expect(await exited(child)).toBe(0);
    await nothingLeft();
  });

  it("down removes what a killed run left", async () => {
    const child = spawn(process.execPath, [BIN, "up", "--transparent", "--json", "--profile", "example-basics"], { stdio: ["ignore", "pipe", "ignore"] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once("data", () => resolve());
      child.once("exit", (c) => reject(new Error(`up exited ${c}`)));
    });
    child.kill("SIGKILL");
    await exited(child);
    expect((await existingNamespaces()).length).toBeGreaterThan(0);
    const d = await run(process.execPath, [BIN, "down"]);
    expect(d.stdout).toMatch(/removed .*chokepoint-censor/);
    await nothingLeft();
  });

  it("says clearly that it needs root, and touches nothing, when run as another user", async () => {
    const r = await run("setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", process.execPath, BIN, "exec", "--profile", "example-basics", "--", "true"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/transparent mode needs root .* run it with sudo/);
    await nothingLeft();
  });

  it("refuses a network the chosen profiles do not have, before creating anything", async () => {
    const r = await exec(["--profile", "example-basics", "--network", "nowhere"], ["true"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no network "nowhere" in the chosen profiles \(networks: default\)/);
    await nothingLeft();
  });

  it("the CA file exists where the tests look for it", () => {
    expect(readFileSync(CA, "utf8")).toContain("BEGIN CERTIFICATE");
  });
});
