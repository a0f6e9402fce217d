// Issue 18: what a new user trips over, each reproduced as they would meet it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { createServer, type Server } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "node:http";
import { startLab, type Lab } from "../../src/index.js";
import { compilePolicy } from "../../src/policy/engine.js";
import { loadProfile } from "../../src/profile/load.js";
import { formatError } from "../../src/util/yaml-source.js";
import { BIN, ROOT, cli, exited, upJson } from "../helpers/cli.js";
import { HEADER, profileFrom, writeFiles } from "../helpers/profiles.js";
import { run } from "../helpers/tools.js";
import { socks } from "../helpers/tls.js";

describe("names a user gives are checked", () => {
  it("an unknown network, a duplicate profile id, a variant nobody has: errors that list what exists", async () => {
    expect(cli(["up", "--profile", "kz-2012-tor-dpi", "--network", "nope"]).stderr).toMatch(/no network "nope" in the chosen profiles \(networks: .*kaztranscom/);
    await expect(startLab({ profiles: ["kz-2012-tor-dpi"], network: "nope" })).rejects.toThrow(/no network "nope"/);
    const dir = writeFiles({ "twin.yaml": readFileSync(join(ROOT, "profiles", "examples", "example-basics.yaml"), "utf8") });
    expect(cli(["up", "--profile", "example-basics", "--profile", join(dir, "twin.yaml")]).stderr).toMatch(/two profiles have the id "example-basics"/);
    expect(cli(["up", "--profile", "example-basics", "--variant", "nope"]).stderr).toMatch(/variant "nope"/);
  });

  it("an action only a resolver can give, on a rule that matches no DNS query, is a validation error", () => {
    const dir = writeFiles({ "p.yaml": `${HEADER}rules:\n  - { id: r, match: { sni: x.example }, action: nxdomain }\n` });
    const r = loadProfile(join(dir, "p.yaml"));
    expect(r.errors.map(formatError).join()).toMatch(/:9:49: action "nxdomain" is an answer only the resolver can give, and this rule matches no DNS query \(sni\)/);
  });

  it("an action for connections on a rule that matches only DNS queries is a validation error too", () => {
    const dir = writeFiles({ "p.yaml": `${HEADER}rules:\n  - { id: r, match: { domain: x.example }, action: { blockpage: { status: 451 } } }\n` });
    expect(loadProfile(join(dir, "p.yaml")).errors.map((e) => e.message).join()).toMatch(/action "blockpage" acts on connections, and this rule matches only DNS queries/);
  });

  it("YAML syntax errors carry their real line and column", () => {
    const dir = writeFiles({ "p.yaml": `${HEADER}rules:\n  - { id: a, match: { domain: x }\n    action: drop\n` });
    const r = loadProfile(join(dir, "p.yaml"));
    expect(r.errors.map((e) => [e.line, e.col])).toEqual([[10, 5], [11, 1]]);
    expect(r.errors.every((e) => !(e.line === 1 && e.col === 1))).toBe(true);
  });
});

describe("list formats keep their meaning, or say why not", () => {
  it("RPZ records: passthru allows, local data spoofs, drop drops, NODATA empties, CNAME . takes the rule's action", () => {
    const p = profileFrom(`${HEADER}rules:\n  - { id: zone, match: { domain: { file: z.rpz } }, action: nxdomain }\n`, {}, {
      "z.rpz": "$ORIGIN rpz.local.\nbad.example CNAME .\nok.bad.example CNAME rpz-passthru.\n*.bad.example CNAME .\nquiet.example CNAME rpz-drop.\nempty.example CNAME *.\nlocal.example A 198.18.0.7\nlocal.example AAAA 2001:db8::7\ntcp.example CNAME rpz-tcp-only.\n",
    });
    const pol = compilePolicy([p]);
    const d = (name: string) => pol.decide({ name, qtype: "A" }, Date.now(), "net-a").action;
    expect(d("bad.example").type).toBe("nxdomain");
    expect(d("x.bad.example").type).toBe("nxdomain");
    expect(d("ok.bad.example").type).toBe("allow");
    expect(d("quiet.example").type).toBe("drop");
    expect(d("empty.example").type).toBe("empty");
    expect(d("tcp.example").type).toBe("truncate");
    expect(d("local.example")).toEqual({ type: "spoof", addresses: ["198.18.0.7", "2001:db8::7"], ttl: 60 });
  });

  it("a CSV without OONI's header, and an empty list, are errors, not a blocked header and a rule that blocks nothing", () => {
    const csv = writeFiles({ "p.yaml": `${HEADER}rules:\n  - { id: r, match: { domain: { file: l.csv } }, action: drop }\n`, "l.csv": "http://a.example/,NEWS\n" });
    expect(loadProfile(join(csv, "p.yaml")).errors.map((e) => e.message).join()).toMatch(/starts with OONI's header/);
    const empty = writeFiles({ "p.yaml": `${HEADER}rules:\n  - { id: r, match: { domain: { file: l.txt } }, action: drop }\n`, "l.txt": "# nothing yet\n" });
    expect(loadProfile(join(empty, "p.yaml")).errors.map((e) => e.message).join()).toMatch(/has no entries/);
  });
});

describe("stopping, in every way a user stops it", () => {
  it("list | head and timeline | head end quietly", () => {
    for (const cmd of ["list", "timeline kz"]) {
      const r = spawnSync("sh", ["-c", `node ${BIN} ${cmd} | head -1`], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
      expect(r.stderr).toBe("");
      expect(r.stdout.split("\n").filter(Boolean)).toHaveLength(1);
    }
  });

  it("Ctrl-C to the whole process group: exit 0, no stack trace, every event written", async () => {
    const events = join(writeFiles({}), "e.jsonl");
    const child = spawn(process.execPath, [BIN, "up", "--json", "--profile", "example-basics", "--ports", "auto", "--events", events], { detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const ready = await new Promise<{ endpoints: { dns: { port: number } } }>((resolve) => child.stdout!.once("data", (d: Buffer) => resolve(JSON.parse(d.toString().split("\n")[0]!))));
    await run("dig", ["@127.0.0.1", "-p", String(ready.endpoints.dns.port), "+tries=1", "+time=2", "nx.example.org"]);
    process.kill(-child.pid!, "SIGINT");
    expect(await exited(child)).toBe(0);
    expect(err).not.toMatch(/EPIPE|Error|at /);
    expect(readFileSync(events, "utf8")).toMatch(/"action":"nxdomain"/);
  });

  it("a lab whose parent (npx's sh -c) was killed stops by itself and frees its ports", async () => {
    const sh = spawn("sh", ["-c", `node ${BIN} up --json --profile example-basics --ports 24100 --no-control; sleep 1`], { stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, NO_COLOR: "1" } });
    await new Promise((resolve) => sh.stdout!.once("data", resolve));
    sh.kill("SIGKILL");
    const free = async (): Promise<boolean> => new Promise((resolve) => {
      const s: Server = createServer();
      s.once("error", () => resolve(false));
      s.listen(24101, "127.0.0.1", () => s.close(() => resolve(true)));
    });
    let ok = false;
    for (let i = 0; i < 40 && !ok; i++) { await new Promise((r) => setTimeout(r, 100)); ok = await free(); }
    expect(ok).toBe(true);
  });
});

describe("one time rule, and clocks that say their zone", () => {
  it("--at without an offset is the profile's local time (Almaty, UTC+6), as in the profiles", async () => {
    const lab = await startLab({ profiles: ["kz-2014-02-13-almaty-messaging"], at: "2014-02-13T17:30", control: false });
    try {
      expect(new Date(lab.clock.now()).toISOString()).toBe("2014-02-13T11:30:00.000Z");
      lab.seek("2014-02-13T18:45");
      expect(new Date(lab.clock.now()).toISOString()).toBe("2014-02-13T12:45:00.000Z");
    } finally {
      await lab.stop();
    }
  });
});

describe("the CA, the classroom, the hints", () => {
  let lab: Lab;
  beforeAll(async () => { lab = await startLab({ profiles: ["kz-2014-02-13-almaty-messaging"], at: "2014-02-13T16:55" }); });
  afterAll(() => lab.stop());
  const get = (path: string): Promise<{ status: number; type: string; body: Buffer }> => new Promise((resolve) => {
    request({ host: "127.0.0.1", port: lab.endpoints.control!.port, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => resolve({ status: res.statusCode!, type: String(res.headers["content-type"]), body: Buffer.concat(chunks) }));
    }).end();
  });

  it("serves the CA's page and files, and exports cer", async () => {
    const page = await get("/ca");
    expect(page.status).toBe(200);
    expect(page.body.toString()).toMatch(/Trust the lab CA[\s\S]*update-ca-certificates[\s\S]*NODE_EXTRA_CA_CERTS/);
    const pem = await get("/ca/lab.pem");
    expect(pem.body.toString()).toBe(readFileSync(lab.pki.authority("lab").certFile, "utf8"));
    const cer = await get("/ca/lab.cer");
    expect(cer.body.equals(lab.pki.authority("lab").certDer)).toBe(true);
    expect((await get("/ca/../../etc/passwd")).status).toBe(404);
    const out = join(writeFiles({}), "lab.cer");
    expect(cli(["ca", "export", "--format", "cer", "--out", out]).code).toBe(0);
    expect(readFileSync(out)[0]).toBe(0x30); // DER: a SEQUENCE
  });

  it("a page opened late gets the last decisions first", async () => {
    lab.decide({ service: "sms" }, { network: "kcell-almaty-mobile" });
    const text = await new Promise<string>((resolve) => {
      request({ host: "127.0.0.1", port: lab.endpoints.control!.port, path: "/v1/events?history=5" }, (res) => {
        let t = "";
        res.on("data", (d: Buffer) => { t += d.toString(); if (t.includes("event: decision")) { res.destroy(); resolve(t); } });
      }).end();
    });
    expect(text).toMatch(/"service":"sms"/);
  });

  it("up: --paused, the token on the ready line, `npx chokepoint` hints, 1 rule, --ports BASE for every network", async () => {
    const { child, ready } = await upJson(["--profile", "kz-2012-tor-dpi", "--ports", "24200", "--listen", "0.0.0.0", "--from", "2012-03-15T12:00", "--paused"]);
    try {
      const r = ready as unknown as { controlToken: string; endpoints: { networks: Record<string, { dns: { port: number } }> } };
      expect(r.controlToken).toMatch(/^[0-9a-f]{32}$/);
      expect(Object.values(r.endpoints.networks).map((n) => n.dns.port).sort()).toEqual([24206, 24207].slice(0, Object.keys(r.endpoints.networks).length));
      const status = await new Promise<{ clock: { paused: boolean } }>((resolve) => request({ host: "127.0.0.1", port: 24205, path: "/v1/status", headers: { authorization: `Bearer ${r.controlToken}` } }, (res) => {
        let t = ""; res.on("data", (d: Buffer) => (t += d)); res.on("end", () => resolve(JSON.parse(t)));
      }).end());
      expect(status.clock.paused).toBe(true);
    } finally {
      child.kill("SIGTERM");
      await exited(child);
    }
    const banner = spawnSync(process.execPath, [BIN, "up", "--profile", "example-basics", "--ports", "auto", "--no-control"], { encoding: "utf8", timeout: 4000, env: { ...process.env, NO_COLOR: "1", npm_command: "exec" } });
    expect(banner.stdout).toMatch(/try: npx chokepoint msg listen/);
    const one = writeFiles({ "one.yaml": `${HEADER}rules:\n  - { id: r, match: { domain: x.example }, action: drop }\n` });
    const b2 = spawnSync(process.execPath, [BIN, "up", "--profile", join(one, "one.yaml"), "--ports", "auto", "--no-control"], { encoding: "utf8", timeout: 4000, env: { ...process.env, NO_COLOR: "1" } });
    expect(b2.stdout).toMatch(/, 1 rule\n/);
  });
});

describe("your own server behind the censor (explicit mode, no root)", () => {
  let echo: Server;
  let lab: Lab;
  beforeAll(async () => {
    echo = createServer((s) => { s.on("error", () => undefined); s.pipe(s); });
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", () => r()));
    const port = (echo.address() as { port: number }).port;
    const dir = writeFiles({ "p.yaml": `${HEADER}rules:\n  - { id: enc, match: { fingerprint: fully-encrypted }, networks: [net-b], action: rst }\n` });
    lab = await startLab({ profiles: [join(dir, "p.yaml")], services: [{ name: "bridge.mine", host: "127.0.0.1", port }] });
  });
  afterAll(async () => { await lab.stop(); echo.close(); });

  it("is answered by DNS, reached through SOCKS5 under its name, and judged like any site", async () => {
    const port = (echo.address() as { port: number }).port;
    const dig = await run("dig", ["@127.0.0.1", "-p", String(lab.endpoints.dns!.port), "+short", "bridge.mine"]);
    expect(dig.stdout.trim()).toBe("198.18.125.10");
    const hello = Buffer.from("hello, my own bridge\n");
    const a = await socks(lab.endpoints.socks!.port, "bridge.mine", port, "net-a");
    expect(a.code).toBe(0);
    a.socket.write(hello);
    const echoed = await new Promise<string>((resolve) => a.socket.once("data", (d: Buffer) => resolve(d.toString())));
    a.socket.destroy();
    expect(echoed).toBe(hello.toString());
    // Random-looking bytes (an obfs-style transport) on the network whose box resets them.
    const b = await socks(lab.endpoints.socks!.port, "bridge.mine", port, "net-b");
    expect(b.code).toBe(0);
    const reset = await new Promise<string>((resolve) => {
      b.socket.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
      b.socket.once("data", () => resolve("answered"));
      b.socket.write(Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 73 + 41) & 0xff)));
    });
    expect(reset).toBe("ECONNRESET");
  });

  it("the README's library example runs as written (and does not hang)", async () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const block = /### As a library\n\n```ts\n([\s\S]*?)```/.exec(readme)![1]!;
    const code = block.replace(/^import .*$/m, "");
    const fn = new Function("startLab", `return (async () => {${code}; return event;})();`) as (s: typeof startLab) => Promise<{ action: string }>;
    const event = await Promise.race([fn(startLab), new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the README example hangs")), 10_000))]);
    expect(event.action).toBe("nxdomain");
  });
});
