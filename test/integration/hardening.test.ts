// Issue 17's attacks, each reproduced against a running lab (loopback only; addresses the
// egress policy must refuse are refused before any connection is tried).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSocket } from "node:dgram";
import { connect, createServer, type Server } from "node:net";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "node:http";
import { startLab, type Lab } from "../../src/index.js";
import { EventLog } from "../../src/events/log.js";
import { Pki } from "../../src/pki/pki.js";
import { LabClock, LAB_TIME_MAX } from "../../src/clock/clock.js";
import { MAX_STREAMS } from "../../src/control/server.js";
import { encodeResponse, parseQuery, RCODE } from "../../src/dns/wire.js";
import { setUnitMs } from "../../src/runtime/limits.js";
import { tempDir, writeFiles } from "../helpers/profiles.js";
import { cli } from "../helpers/cli.js";
import { captureClientHello, socks } from "../helpers/tls.js";

/** An HTTP request to the control API with the headers an attacker's page would send. */
function controlCall(lab: Lab, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: lab.endpoints.control!.port, method, path, headers: { ...(body ? { "content-type": "application/json" } : {}), ...headers } }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** SOCKS5 CONNECT by IPv4, IPv6 or name; resolves with the reply code (0 = granted). */
function socksConnect(port: number, target: { ip4?: string; ip6?: number[]; name?: string }, dport: number, auth?: { user: string; pass: string }): Promise<number> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.on("error", () => resolve(-1));
    let step = 0;
    s.on("data", (d: Buffer) => {
      if (step === 0) {
        if (d[1] === 0xff) { s.destroy(); return resolve(-2); }
        if (d[1] === 2 && auth) {
          const u = Buffer.from(auth.user), p = Buffer.from(auth.pass);
          s.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
          step = 1;
          return;
        }
        step = 2;
      } else if (step === 1) {
        if (d[1] !== 0) { s.destroy(); return resolve(-3); }
        step = 2;
      } else { s.destroy(); return resolve(d[1]!); }
      let addr: Buffer;
      if (target.ip4) addr = Buffer.from([1, ...target.ip4.split(".").map(Number)]);
      else if (target.ip6) addr = Buffer.concat([Buffer.from([4]), Buffer.from(target.ip6.flatMap((g) => [g >> 8, g & 0xff]))]);
      else addr = Buffer.concat([Buffer.from([3, target.name!.length]), Buffer.from(target.name!)]);
      s.write(Buffer.concat([Buffer.from([5, 1, 0]), addr, Buffer.from([dport >> 8, dport & 0xff])]));
      step = 3;
    });
    s.write(Buffer.from(auth ? [5, 1, 2] : [5, 1, 0]));
    setTimeout(() => { s.destroy(); resolve(-4); }, 5000);
  });
}

describe("1. no control input crashes the lab", () => {
  let lab: Lab;
  beforeAll(async () => { lab = await startLab({ profiles: ["example-basics"], at: "2024-05-05T20:30:00Z" }); });
  afterAll(() => lab.stop());

  it("refuses speeds and instants out of range; the clock and the log take any instant they can hold", async () => {
    for (const speed of [1e308, 0, -1, 1e8]) {
      const r = await controlCall(lab, "POST", "/v1/clock", {}, JSON.stringify({ speed }));
      expect(r.status).toBe(400);
      expect(r.text).toMatch(/speed must be a number above 0 and at most/);
    }
    expect((await controlCall(lab, "POST", "/v1/clock", {}, JSON.stringify({ seek: "+275761-01-01" }))).status).toBe(400);
    // The fastest replay, run to the end of time: lab time stops at the last date, and decisions still log.
    const c = new LabClock({ from: LAB_TIME_MAX - 1000, speed: 1e7 });
    await new Promise((r) => setTimeout(r, 20));
    expect(c.now()).toBe(LAB_TIME_MAX);
    const log = new EventLog();
    expect(() => log.record({ labTime: 1e300, component: "lab", action: "allow" })).not.toThrow();
    expect(() => log.record({ labTime: Number.NaN, component: "lab", action: "allow" })).not.toThrow();
    expect(lab.decide({ name: "nx.example.org", qtype: "A" }).action.type).toBe("nxdomain");
    expect(cli(["up", "--profile", "example-basics", "--speed", "1e308"]).stderr).toMatch(/--speed takes a number above 0 and at most/);
  });
});

describe("2. no file leaves the lab", () => {
  let lab: Lab;
  beforeAll(async () => { lab = await startLab({ profiles: ["example-basics"] }); });
  afterAll(() => lab.stop());

  it("activates profiles by catalog id only, and never quotes a key or a certificate", async () => {
    const key = lab.pki.authority("lab").keyFile;
    for (const ref of ["/etc/passwd", key, "../../etc/passwd", "profiles/example-basics.yaml"]) {
      const r = await controlCall(lab, "POST", "/v1/profiles", {}, JSON.stringify({ activate: ref }));
      expect(r.status).toBe(400);
      expect(r.text).toMatch(/in the catalog/);
      expect(r.text).not.toMatch(/PRIVATE|root:/);
    }
    // A profile (loaded by a user at start) whose list points at the CA key: the error names the file, not its lines.
    const dir = writeFiles({ "p.yaml": `id: leak\ntitle: t\ncountry: ZZ\ntimezone: UTC\nperiod: { start: "2000-01-01" }\nnetworks: [default]\nrules:\n  - { id: r, match: { domain: { file: ${JSON.stringify(key)} } }, action: nxdomain }\n` });
    const out = cli(["validate", join(dir, "p.yaml")]);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/does not look like a list/);
    const keyText = readFileSync(key, "utf8").split("\n")[1]!;
    expect(out.stderr).not.toContain(keyText.slice(0, 20));
  });
});

describe("3. no door beyond the lab world (--world internet)", () => {
  let upstreamDns: ReturnType<typeof createSocket>;
  let echo: Server;
  let echoPort = 0;
  let lab: Lab, allowing: Lab, wide: Lab;
  beforeAll(async () => {
    echo = createServer((s) => { s.on("error", () => undefined); s.pipe(s); });
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", () => r()));
    echoPort = (echo.address() as { port: number }).port;
    // The "real" resolver: names of the test resolve to loopback and to private addresses.
    upstreamDns = createSocket("udp4");
    upstreamDns.on("message", (m, rinfo) => {
      const q = parseQuery(m);
      if (!q.ok) return;
      const to: Record<string, string> = { "echo.test": "127.0.0.1", "metadata.test": "169.254.169.254", "intranet.test": "10.0.0.1" };
      const a = to[q.query.name];
      const reply = a ? encodeResponse(q.query, { rcode: RCODE.NOERROR, answers: q.query.qtype === 1 ? [{ type: "A", address: a, ttl: 60 }] : [] }) : encodeResponse(q.query, { rcode: RCODE.NXDOMAIN });
      upstreamDns.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => upstreamDns.bind(0, "127.0.0.1", () => r()));
    const up = `127.0.0.1:${upstreamDns.address().port}`;
    lab = await startLab({ profiles: ["example-basics"], world: "internet", upstream: up });
    allowing = await startLab({ profiles: ["example-basics"], world: "internet", upstream: up, allowUpstream: ["127.0.0.0/8"] });
    wide = await startLab({ profiles: ["example-basics"], world: "internet", upstream: up, listen: "0.0.0.0", control: false });
  });
  afterAll(async () => { await lab.stop(); await allowing.stop(); await wide.stop(); echo.close(); upstreamDns.close(); });

  it("refuses every spelling of loopback, and private, link-local and metadata addresses, before connecting", async () => {
    const p = lab.endpoints.socks!.port;
    expect(await socksConnect(p, { ip6: [0, 0, 0, 0, 0, 0, 0, 1] }, echoPort)).not.toBe(0);
    expect(await socksConnect(p, { ip6: [0, 0, 0, 0, 0, 0xffff, 0x7f00, 1] }, echoPort)).not.toBe(0);
    expect(await socksConnect(p, { ip4: "127.0.0.1" }, echoPort)).not.toBe(0);
    for (const name of ["[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "echo.test"]) {
      expect(await socksConnect(p, { name }, echoPort)).not.toBe(0);
    }
    for (const ip4 of ["10.0.0.1", "169.254.169.254", "192.168.1.1", "0.0.0.0"]) expect(await socksConnect(p, { ip4 }, 80)).not.toBe(0);
    expect(await socksConnect(p, { name: "metadata.test" }, 80)).not.toBe(0);
    // The lab's own control port, by another spelling.
    expect(await socksConnect(p, { name: "[::ffff:127.0.0.1]" }, lab.endpoints.control!.port)).not.toBe(0);
    const refused = (lab.interceptor as unknown as { upstream: { o: { egress: { refused: Record<string, number> } } } }).upstream.o.egress.refused;
    expect(refused.loopback).toBeGreaterThanOrEqual(7);
    expect((refused.private ?? 0) + (refused["link-local"] ?? 0) + (refused.unspecified ?? 0)).toBeGreaterThanOrEqual(5);
  });

  it("resolves names with the real upstream resolver, and reaches an allowed prefix", async () => {
    const p = allowing.endpoints.socks!.port;
    expect(await socksConnect(p, { name: "echo.test" }, echoPort)).toBe(0);
    expect(await socksConnect(p, { name: "nothere.test" }, echoPort)).toBe(4); // no such name: host unreachable
    expect(await socksConnect(p, { ip4: "10.0.0.1" }, 80)).not.toBe(0); // still not private ranges
  });

  it("beyond loopback, the proxies want a password", async () => {
    expect(wide.proxyPassword).toMatch(/^[0-9a-f]{24}$/);
    const p = wide.endpoints.socks!.port;
    expect(await socksConnect(p, { ip4: "198.18.0.1" }, 9)).toBe(-2); // no method without credentials
    expect(await socksConnect(p, { ip4: "198.18.0.1" }, 9, { user: "default", pass: "wrong" })).toBe(-3);
    const r = await new Promise<string>((resolve) => {
      const s = connect(wide.endpoints.httpProxy!.port, "127.0.0.1", () => s.write("CONNECT 198.18.0.1:9 HTTP/1.1\r\nHost: x\r\n\r\n"));
      s.on("data", (d: Buffer) => { resolve(d.toString().split("\r\n")[0]!); s.destroy(); });
    });
    expect(r).toMatch(/407/);
  });
});

describe("4. the control API is not a page's to drive", () => {
  let lab: Lab;
  beforeAll(async () => { lab = await startLab({ profiles: ["example-basics"], controlHosts: ["lab.classroom"] }); });
  afterAll(() => lab.stop());

  it("checks Host (DNS rebinding) and Origin (cross-site requests)", async () => {
    expect((await controlCall(lab, "GET", "/v1/status", { host: "attacker.example" })).status).toBe(403);
    expect((await controlCall(lab, "GET", "/", { host: "attacker.example:8470" })).status).toBe(403);
    expect((await controlCall(lab, "POST", "/v1/clock", { origin: "http://attacker.example" }, JSON.stringify({ pause: true }))).status).toBe(403);
    expect((await controlCall(lab, "POST", "/v1/clock", { origin: "null" }, JSON.stringify({ pause: true }))).status).toBe(403);
    const port = lab.endpoints.control!.port;
    expect((await controlCall(lab, "POST", "/v1/clock", { origin: `http://127.0.0.1:${port}` }, JSON.stringify({ pause: true }))).status).toBe(200);
    expect((await controlCall(lab, "GET", "/v1/status", { host: `localhost:${port}` })).status).toBe(200);
    expect((await controlCall(lab, "GET", "/v1/status", { host: `[::1]:${port}` })).status).toBe(200);
    expect((await controlCall(lab, "GET", "/v1/status", { host: "lab.classroom" })).status).toBe(200);
  });
});

describe("5. memory stays bounded", () => {
  it("keeps at most its bound of certificates, however many names clients ask for", () => {
    const pki = new Pki(tempDir(), { maxLeaves: 50 });
    for (let i = 0; i < 300; i++) pki.context({ names: [`n${i}.example`] });
    expect(pki.cached).toEqual({ leaves: 50, contexts: 50, max: 50 });
  });

  it("caps event streams and drops readers that stop reading", async () => {
    const lab = await startLab({ profiles: ["example-basics"] });
    try {
      const open = await Promise.all(Array.from({ length: MAX_STREAMS }, () => new Promise<import("node:http").IncomingMessage>((resolve) => {
        request({ host: "127.0.0.1", port: lab.endpoints.control!.port, path: "/v1/events" }, resolve).end();
      })));
      expect((await controlCall(lab, "GET", "/v1/events")).status).toBe(503);
      // Two of them stop reading: after bursts of decisions past the per-reader buffer, they are dropped.
      for (const res of open.slice(2)) res.destroy();
      for (const res of open.slice(0, 2)) res.pause();
      for (let burst = 0; burst < 40; burst++) {
        for (let i = 0; i < 2000; i++) lab.decide({ name: `n${i}.example.org`, qtype: "A" });
        await new Promise((r) => setTimeout(r, 5));
      }
      await new Promise((r) => setTimeout(r, 300));
      const status = JSON.parse((await controlCall(lab, "GET", "/v1/status")).text) as { control: { slowReadersDropped: number; streamsRefused: number } };
      expect(status.control.slowReadersDropped).toBeGreaterThan(0);
      expect(status.control.streamsRefused).toBe(1);
      for (const res of open.slice(0, 2)) res.destroy();
    } finally {
      await lab.stop();
    }
  });

  it("rotates the events file at its size limit, losing no event", () => {
    const file = join(tempDir(), "events.jsonl");
    const log = new EventLog(file, { maxBytes: 8192 });
    for (let i = 0; i < 600; i++) log.record({ labTime: 0, component: "lab", action: "allow", detail: { i } });
    log.close();
    expect(log.rotations).toBeGreaterThan(0);
    expect(statSync(file).size).toBeLessThanOrEqual(8192 + 512 * 80);
    expect(existsSync(`${file}.1`)).toBe(true);
    const last = readFileSync(file, "utf8").trim().split("\n").pop()!;
    expect(JSON.parse(last).detail.i).toBe(599);
  });
});

describe("6. connection caps and trickle timeouts", () => {
  let lab: Lab;
  beforeAll(async () => {
    setUnitMs(800);
    lab = await startLab({ profiles: ["example-basics"], maxConnections: { perListener: 5 } });
  });
  afterAll(async () => { setUnitMs(undefined); await lab.stop(); });

  it("closes connections past a listener's cap, and counts them", async () => {
    const socks = Array.from({ length: 8 }, () => connect(lab.endpoints.relay!.port, "127.0.0.1").on("error", () => undefined));
    await new Promise((r) => setTimeout(r, 300));
    expect(lab.connections.stats.byListener.relay!.refused).toBe(3);
    for (const s of socks) s.destroy();
  });

  it.each(["dns", "relay"] as const)("closes a client that trickles a %s message byte by byte", async (which) => {
    const port = which === "dns" ? lab.endpoints.dns!.port : lab.endpoints.relay!.port;
    const bytes = which === "dns" ? Buffer.from([0, 40, 1, 2, 3, 4, 5, 6, 7, 8, 9]) : Buffer.from('{"type":"ping"');
    const closedAfter = await new Promise<number>((resolve) => {
      const t0 = Date.now();
      const s = connect(port, "127.0.0.1");
      s.on("error", () => undefined);
      let i = 0;
      const tick = setInterval(() => { if (i < bytes.length && !s.destroyed) s.write(bytes.subarray(i, ++i)); }, 150);
      s.on("close", () => { clearInterval(tick); resolve(Date.now() - t0); });
      setTimeout(() => { clearInterval(tick); s.destroy(); }, 5000);
    });
    expect(closedAfter).toBeLessThan(2500);
    expect(which === "dns" ? lab.resolver.stats.tcpTrickled : lab.relay.stats.trickled).toBe(1);
  });
});

describe("8. a dead or stopped origin helper is noticed", () => {
  let lab: Lab;
  beforeAll(async () => {
    const dir = writeFiles({ "m.yaml": `id: m\ntitle: t\ncountry: ZZ\ntimezone: UTC\nperiod: { start: "2000-01-01" }\nnetworks: [default]\nrules:\n  - { id: mitm, match: { sni: intercepted.example }, action: { mitm: { ca: qaznet } } }\n` });
    lab = await startLab({ profiles: [join(dir, "m.yaml")], events: join(tempDir(), "e.jsonl") });
  });
  afterAll(() => lab.stop());

  const mitmFlow = async (): Promise<{ answered: boolean; ms: number }> => {
    const t0 = Date.now();
    const hello = await captureClientHello("intercepted.example");
    const { socket, code } = await socks(lab.endpoints.socks!.port, "intercepted.example", 443);
    if (code !== 0) return { answered: false, ms: Date.now() - t0 };
    const first = await new Promise<Buffer | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 9000);
      socket.once("data", (d: Buffer) => { clearTimeout(timer); resolve(d); });
      socket.once("close", () => { clearTimeout(timer); resolve(undefined); });
      socket.on("error", () => undefined);
      socket.resume();
      socket.write(hello);
    });
    socket.destroy();
    return { answered: first?.[0] === 0x16, ms: Date.now() - t0 };
  };
  const seen = (action: string): Promise<void> => new Promise((resolve) => {
    const unsub = lab.eventLog.subscribe((e) => { if (e.action === action) { unsub(); resolve(); } });
  });

  it("restarts a killed helper, and MITM works again", async () => {
    expect((await mitmFlow()).answered).toBe(true);
    const exited = seen("origin-exited"), back = seen("origin-restarted");
    process.kill(lab.origin!.pid!, "SIGKILL");
    await exited;
    await back;
    expect((await mitmFlow()).answered).toBe(true);
  });

  it("does not take its own stall for the helper's (a synchronous key generation, a loaded machine)", async () => {
    let judged = 0;
    const unsub = lab.eventLog.subscribe((e) => { if (e.action === "origin-hung" || e.action === "origin-exited") judged++; });
    const pid = lab.origin!.pid;
    const until = Date.now() + 4500; // longer than the 3 s a silent helper is given
    while (Date.now() < until) { /* this process is busy; the helper is fine */ }
    await new Promise((r) => setTimeout(r, 2500)); // a few heartbeats after the stall
    unsub();
    expect(judged).toBe(0);
    expect(lab.origin!.pid).toBe(pid);
    expect((await mitmFlow()).answered).toBe(true);
  });

  it("kills and restarts a stopped helper; flows meanwhile fail fast instead of hanging", async () => {
    const hung = seen("origin-hung"), back = seen("origin-restarted");
    process.kill(lab.origin!.pid!, "SIGSTOP");
    const during = await mitmFlow();
    expect(during.ms).toBeLessThan(8000);
    await hung;
    await back;
    expect((await mitmFlow()).answered).toBe(true);
  });
});

describe("8b. a dead resolver helper is replaced", () => {
  it("reports it, starts another, and queries are answered meanwhile and after", async () => {
    const lab = await startLab({ profiles: ["example-basics"], dnsWorkers: 2, events: join(tempDir(), "e.jsonl") });
    try {
      const seen = (action: string): Promise<void> => new Promise((resolve) => {
        const unsub = lab.eventLog.subscribe((e) => { if (e.action === action) { unsub(); resolve(); } });
      });
      const exited = seen("resolver-helper-exited"), back = seen("resolver-helper-restarted");
      process.kill(lab.resolverWorkers!.pids[0]!, "SIGKILL");
      await exited;
      const { run } = await import("../helpers/tools.js");
      const dig = (): Promise<string> => run("dig", ["@127.0.0.1", "-p", String(lab.endpoints.dns!.port), "+tries=1", "+time=2", "nx.example.org"]).then((r) => r.stdout);
      expect(await dig()).toMatch(/NXDOMAIN/); // the lab's own process shares the socket
      await back;
      expect(lab.resolverWorkers!.pids).toHaveLength(1);
      expect(await dig()).toMatch(/NXDOMAIN/);
    } finally {
      await lab.stop();
    }
  });
});

describe("9. smaller doors", () => {
  it("the relay's UDP answers a stranger no larger than it asked", async () => {
    const lab = await startLab({ profiles: ["example-basics"] });
    try {
      const s = createSocket("udp4");
      const replies: Buffer[] = [];
      s.on("message", (m) => replies.push(m));
      await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
      s.send(Buffer.from("x"), lab.endpoints.relay!.port, "127.0.0.1");
      s.send(Buffer.from('{"type":"ping"}'), lab.endpoints.relay!.port, "127.0.0.1");
      await new Promise((r) => setTimeout(r, 300));
      s.close();
      expect(replies.map((m) => m.toString())).toEqual(['{"type":"pong"}']);
    } finally {
      await lab.stop();
    }
  });

  it("takes the control token from a file, so it never shows in ps", async () => {
    const file = join(tempDir(), "token");
    writeFileSync(file, "s3cret-token-from-file\n");
    const r = cli(["up", "--profile", "example-basics", "--listen", "127.0.0.1", "--control-token-file", join(tempDir(), "missing")]);
    expect(r.stderr).toMatch(/ENOENT|no such file/);
    const { upJson, exited } = await import("../helpers/cli.js");
    const { child, ready } = await upJson(["--profile", "example-basics", "--ports", "auto", "--listen", "0.0.0.0", "--control-token-file", file]);
    try {
      const port = ready.endpoints.control!.port;
      const ask = (token?: string): Promise<number> => new Promise((resolve) => {
        request({ host: "127.0.0.1", port, path: "/v1/status", headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => { res.resume(); resolve(res.statusCode!); }).end();
      });
      expect(await ask()).toBe(401);
      expect(await ask("s3cret-token-from-file")).toBe(200);
    } finally {
      child.kill("SIGTERM");
      await exited(child);
    }
  });
});
