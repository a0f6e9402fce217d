import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "node:net";
import { join } from "node:path";
import { startLab, type Lab } from "../../src/index.js";
import { writeFiles } from "../helpers/profiles.js";
import { run, sClient } from "../helpers/tools.js";
import { buildClientHello, captureClientHello, outcome, socks } from "../helpers/tls.js";
import { TOR_CIPHER_PREFIX } from "../../src/dpi/classify.js";

const RULES = `
country: ZZ
timezone: UTC
period: { start: "2000-01-01" }
networks: [default, other]
rules:
  - { id: split, match: { sni: split.example }, action: rst }
  - { id: slow, match: { sni: slow.example }, action: { throttle: { rate: 200000 } } }
  - { id: resid, match: { sni: trigger.example }, action: rst, residual: { seconds: 2 } }
  - { id: mitm, match: { sni: intercepted.example }, action: { mitm: { ca: qaznet } } }
  - { id: mitm-valid, match: { sni: [valid-only.example, expired.badcert.example, self-signed.badcert.example, wrong-name.badcert.example] }, action: { mitm: { ca: qaznet, serverValid: true } } }
  - { id: alert, match: { sni: alert.example }, action: tls-alert }
  - { id: fin, match: { sni: fin.example }, action: fin }
  - { id: drop, match: { sni: drop.example }, action: { drop: { timeout: 1s } } }
  - { id: redirect, match: { host: redir.example }, action: { blockpage: { location: "http://block.example/" } } }
  - { id: ip-drop, match: { ip: 198.18.99.0/24 }, action: drop }
  - { id: ip-rst, match: { ip: 198.18.98.0/24 }, action: rst }
  - { id: other-only, match: { host: net.example }, networks: [other], action: { blockpage: { status: 403, body: other } } }
  - { id: ssh, match: { fingerprint: ssh }, action: rst }
  - { id: tor, match: { fingerprint: tor-2012 }, networks: [other], action: drop }
  - { id: kw, match: { keyword: forbidden-word }, action: rst }
  - { id: timeout408, match: { host: slideshare.example }, action: { blockpage: { status: 408, body: "" } } }
  - { id: held, match: { host: held.example }, action: { blockpage: { status: 403, body: "held page", hold: 1s } } }
  - { id: url, match: { url: "translate.example/translate" }, action: { blockpage: { status: 403, body: "url blocked" } } }
world:
  hosts:
    "ipdrop.example": ["198.18.99.1"]
    "iprst.example": ["198.18.98.1"]
`;

let lab: Lab;          // first-segment DPI
let reassembling: Lab; // reassembling DPI
let basic: Lab;        // the example profile
let caLab: string, caQaznet: string;

beforeAll(async () => {
  const dir = writeFiles({
    "first.yaml": `id: first-segment\ntitle: t\ndpi: { inspect: first-segment }\n${RULES}`,
    "reasm.yaml": `id: reassembling\ntitle: t\ndpi: { inspect: reassemble, reassembleTimeout: 2s }\n${RULES}`,
  });
  lab = await startLab({ profiles: [join(dir, "first.yaml")] });
  reassembling = await startLab({ profiles: [join(dir, "reasm.yaml")] });
  basic = await startLab({ profiles: ["example-basics"] });
  caLab = lab.pki.authority("lab").certFile;
  caQaznet = lab.pki.authority("qaznet").certFile;
});
afterAll(async () => { await lab.stop(); await reassembling.stop(); await basic.stop(); });

const proxy = (l: Lab) => `http://127.0.0.1:${l.endpoints.httpProxy!.port}`;
const socksAddr = (l: Lab) => `127.0.0.1:${l.endpoints.socks!.port}`;
const curl = (args: string[]) => run("curl", ["-sS", "--max-time", "6", "--cacert", caLab, ...args]);

describe("the example profile through the explicit proxies (curl, openssl)", () => {
  for (const [label, via] of [["HTTP proxy", (l: Lab) => ["-x", proxy(l)]], ["SOCKS5", (l: Lab) => ["--socks5-hostname", socksAddr(l)]]] as const) {
    it(`${label}: reset, 451 page, and the world's page`, async () => {
      const reset = await curl([...via(basic), "https://reset.example.org/"]);
      expect([35, 56]).toContain(reset.code);
      const page = await curl([...via(basic), "-w", "\n%{http_code}", "http://page.example.org/"]);
      expect(page.stdout).toBe("Blocked by order\n451");
      const ok = await curl([...via(basic), "-o", "/dev/null", "-w", "%{http_code}", "https://anything.example/"]);
      expect(ok.stdout).toBe("200");
    });
  }

  it("openssl s_client -proxy: a reset for the blocked name, a verified handshake for another", async () => {
    const p = `127.0.0.1:${basic.endpoints.httpProxy!.port}`;
    const bad = await sClient(["-proxy", p, "-connect", "reset.example.org:443", "-servername", "reset.example.org", "-CAfile", caLab]);
    expect(bad.stdout).toMatch(/no peer certificate available/);
    expect(bad.stdout).not.toMatch(/subject=/);
    const good = await sClient(["-proxy", p, "-connect", "anything.example:443", "-servername", "anything.example", "-CAfile", caLab]);
    expect(good.stdout).toMatch(/Verify return code: 0 \(ok\)/);
  });

  it("records one event per connection with what the DPI saw", async () => {
    const seen: Record<string, unknown>[] = [];
    const unsub = basic.eventLog.subscribe((e) => seen.push(e as unknown as Record<string, unknown>));
    await curl(["--socks5-hostname", socksAddr(basic), "https://reset.example.org/"]);
    unsub();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      component: "interceptor", network: "default", action: "rst", rule: "sni-reset", profile: "example-basics",
      observation: { host: "reset.example.org", sni: "reset.example.org", port: 443, protocol: "tls", entry: "socks" },
    });
    const fps = (seen[0]!.observation as { fingerprints: string[] }).fingerprints;
    expect(fps.some((f) => f.startsWith("ja3:"))).toBe(true);
    expect(fps.some((f) => f.startsWith("ja4:t13d"))).toBe(true);
  });
});

describe("DPI quirks", () => {
  it("a ClientHello split over two segments passes first-segment DPI and is caught by reassembling DPI", async () => {
    const hello = await captureClientHello("split.example");
    const attempt = async (l: Lab) => {
      const { socket, code } = await socks(l.endpoints.socks!.port, "split.example", 443);
      expect(code).toBe(0);
      socket.write(hello.subarray(0, 30));
      await new Promise((r) => setTimeout(r, 150));
      socket.write(hello.subarray(30));
      return outcome(socket, 1500);
    };
    const passed = await attempt(lab);
    expect(passed.data[0]).toBe(0x16); // the origin's ServerHello came back
    const caught = await attempt(reassembling);
    expect(caught.ended).toBe("reset");
    expect(caught.data.length).toBe(0);
  });

  it("waiting before the first byte evades nothing: a ClientHello sent after 1.3 s is still judged", async () => {
    const hello = await captureClientHello("split.example");
    for (const l of [lab, reassembling]) {
      const { socket, code } = await socks(l.endpoints.socks!.port, "split.example", 443);
      expect(code).toBe(0);
      await new Promise((r) => setTimeout(r, 1300));
      socket.write(hello);
      const caught = await outcome(socket, 1500);
      expect(caught.ended).toBe("reset");
      expect(caught.data.length).toBe(0);
    }
  });

  it.each([1, 2])("a reassembling DPI is not dodged by a first segment of %i byte(s)", async (n) => {
    const hello = await captureClientHello("split.example");
    const { socket, code } = await socks(reassembling.endpoints.socks!.port, "split.example", 443);
    expect(code).toBe(0);
    socket.write(hello.subarray(0, n));
    await new Promise((r) => setTimeout(r, 150));
    socket.write(hello.subarray(n));
    const caught = await outcome(socket, 1500);
    expect(caught.ended).toBe("reset");
    expect(caught.data.length).toBe(0);
  });
});

describe("actions", () => {
  it("throttle: the measured rate stays within 20% of the configured rate", async () => {
    const r = await curl(["-x", proxy(lab), "-o", "/dev/null", "-w", "%{speed_download}", "--max-time", "20", "https://slow.example/bytes/600000"]);
    expect(r.code).toBe(0);
    const rate = Number(r.stdout);
    expect(rate).toBeGreaterThan(200_000 * 0.8);
    expect(rate).toBeLessThan(200_000 * 1.2);
  });

  it("residual blocking: a retry to the same address and port is blocked within the window, allowed after", async () => {
    const p = lab.endpoints.socks!.port;
    const first = await socks(p, "trigger.example", 443);
    first.socket.write(await captureClientHello("trigger.example"));
    expect((await outcome(first.socket, 1000)).ended).toBe("reset");
    // Same server address and port, an innocent name: still blocked, at connect time.
    const retry = await socks(p, "trigger.example", 443);
    expect(retry.code).toBe(5);
    retry.socket.destroy();
    await new Promise((r) => setTimeout(r, 2200));
    const later = await socks(p, "trigger.example", 443);
    expect(later.code).toBe(0);
    later.socket.write(await captureClientHello("innocent.example"));
    expect((await outcome(later.socket, 1000)).data[0]).toBe(0x16);
  });

  it("mitm: the client sees the state CA as issuer and the origin's subject; traffic flows", async () => {
    const r = await sClient(["-proxy", `127.0.0.1:${lab.endpoints.httpProxy!.port}`, "-connect", "intercepted.example:443", "-servername", "intercepted.example", "-CAfile", caQaznet]);
    expect(r.stdout).toMatch(/issuer=C ?= ?KZ, CN ?= ?Security Certificate/); // the intermediate of the 2019 chain, under the root
    expect(r.stdout).toMatch(/i:C ?= ?KZ, CN ?= ?Qaznet Trust Network/);
    expect(r.stdout).toMatch(/subject=CN ?= ?intercepted\.example/);
    expect(r.stdout).toMatch(/Verify return code: 0 \(ok\)/);
    const page = await run("curl", ["-sS", "--max-time", "6", "--cacert", caQaznet, "-x", proxy(lab), "https://intercepted.example/echo"]);
    expect(page.stdout).toMatch(/^GET \/echo HTTP\/1\.1/);
    expect((await curl(["-x", proxy(lab), "https://intercepted.example/"])).code).toBe(60); // the lab CA does not trust it
  });

  it("mitm with serverValid intercepts only servers whose certificate is valid and trusted, for any name (the 2019 box)", async () => {
    const issuer = async (name: string): Promise<string> => {
      const r = await sClient(["-proxy", `127.0.0.1:${lab.endpoints.httpProxy!.port}`, "-connect", `${name}:443`, "-servername", name]);
      return /issuer=(.*)/.exec(r.stdout)?.[1]?.replace(/CN ?= ?/, "").trim() ?? r.stderr;
    };
    expect(await issuer("valid-only.example")).toMatch(/Security Certificate/);
    expect(await issuer("wrong-name.badcert.example")).toMatch(/Security Certificate/); // valid, for another name: intercepted
    expect(await issuer("expired.badcert.example")).toMatch(/chokepoint lab CA/); // let through: the client sees the server's own
    expect(await issuer("self-signed.badcert.example")).not.toMatch(/Security Certificate/);
  });

  it("tls-alert, fin, drop with a timeout, a redirect page and a 408 from the middle", async () => {
    const alert = await sClient(["-proxy", `127.0.0.1:${lab.endpoints.httpProxy!.port}`, "-connect", "alert.example:443", "-servername", "alert.example"]);
    expect(alert.stderr + alert.stdout).toMatch(/alert handshake failure|sslv3 alert/i);
    const fin = await socks(lab.endpoints.socks!.port, "fin.example", 443);
    fin.socket.write(await captureClientHello("fin.example"));
    expect(await outcome(fin.socket, 2000)).toMatchObject({ ended: "closed", data: Buffer.alloc(0) });
    const drop = await socks(lab.endpoints.socks!.port, "drop.example", 443);
    drop.socket.write(await captureClientHello("drop.example"));
    const t0 = Date.now();
    const d = await outcome(drop.socket, 4000);
    expect(d.data.length).toBe(0);
    expect(d.ended).not.toBe("timeout"); // closed by the censor after its 1 s
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    const redir = await curl(["-x", proxy(lab), "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "http://redir.example/"]);
    expect(redir.stdout).toBe("302 http://block.example/");
    const t408 = await curl(["-x", proxy(lab), "-o", "/dev/null", "-w", "%{http_code}", "http://slideshare.example/"]);
    expect(t408.stdout).toBe("408");
  });

  it("a reassembling DPI reads no further than its buffer: the 2020-22 HTTP box misses a Host header past 1,434 bytes (USENIX Security 2022)", async () => {
    const http = await startLab({ profiles: ["kz-2020-http-box"], at: "2021-06-01T12:00" });
    try {
      const get = (path: string) => run("curl", ["-sS", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", "--socks5-hostname", `127.0.0.1:${http.endpoints.socks!.port}`, `http://blocked-http.example/${path}`]);
      expect((await get("a".repeat(1500))).stdout).toBe("200"); // the request line alone fills the buffer
      expect((await get("a".repeat(1300))).code).toBe(28); // the Host header within it: dropped
    } finally {
      await http.stop();
    }
  });

  it("a block page after a hold (KZ HTTP 2019-20): nothing for the hold, what the client sends is dropped, then the page and a close", async () => {
    for (const via of [["--socks5-hostname", socksAddr(lab)], ["-x", proxy(lab)]]) {
      const t0 = Date.now();
      const r = await curl([...via, "-w", " %{http_code}", "http://held.example/"]);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect(r.stdout).toBe("held page 403");
    }
    // A client that gives up first: no page, and the hold ends with it.
    const r = await curl(["--max-time", "0.5", "--socks5-hostname", socksAddr(lab), "http://held.example/"]);
    expect(r.code).toBe(28);
  });

  it("connect-level rules act before any payload: drop times out, rst is refused", async () => {
    expect((await curl(["--max-time", "2", "-x", proxy(lab), "https://ipdrop.example/"])).code).toBe(28);
    expect((await curl(["--max-time", "2", "--socks5-hostname", socksAddr(lab), "https://ipdrop.example/"])).code).toBe(28);
    expect((await curl(["-x", proxy(lab), "https://iprst.example/"])).code).toBe(56);
    expect((await curl(["--socks5-hostname", socksAddr(lab), "https://iprst.example/"])).code).toBe(97);
  });

  it("fingerprint and keyword rules: Tor's 2012 hello dropped on its network, SSH reset, a forbidden word reset", async () => {
    const tor = buildClientHello({ ciphers: [...TOR_CIPHER_PREFIX, 0x0033, 0x002f, 0xfeff, 0x000a] });
    const onOther = await socks(lab.endpoints.socks!.port, "bridge.example", 443, "other");
    onOther.socket.write(tor);
    expect((await outcome(onOther.socket, 1500)).ended).toBe("timeout"); // silence
    const onDefault = await socks(lab.endpoints.socks!.port, "bridge.example", 443);
    onDefault.socket.write(tor);
    expect((await outcome(onDefault.socket, 1500)).ended).not.toBe("reset");
    const ssh = await socks(lab.endpoints.socks!.port, "shell.example", 22);
    ssh.socket.write("SSH-2.0-OpenSSH_9.2\r\n");
    expect((await outcome(ssh.socket, 1500)).ended).toBe("reset");
    const kw = await run("curl", ["-sS", "--max-time", "5", "-x", proxy(lab), "-d", "text with forbidden-word inside", "http://forum.example/post"]);
    expect(kw.code).toBe(56);
  });
});

describe("server-direction DPI", () => {
  it("judges the server's first bytes when the profile's DPI reads that direction", async () => {
    const dir = writeFiles({ "server.yaml": `id: server-side\ntitle: t\ncountry: ZZ\ntimezone: UTC\nperiod: { start: "2000-01-01" }\nnetworks: [default]\ndpi: { direction: server }\nrules:\n  - { id: reply-word, match: { keyword: forbidden-reply }, action: rst }\n` });
    const srv = await startLab({ profiles: [join(dir, "server.yaml")] });
    const via = ["-x", `http://127.0.0.1:${srv.endpoints.httpProxy!.port}`];
    const seen: Record<string, unknown>[] = [];
    const unsub = srv.eventLog.subscribe((e) => seen.push(e as unknown as Record<string, unknown>));
    // The word is in the request, but only the echoed reply is read: reset on the way back.
    const hit = await run("curl", ["-sS", "--max-time", "5", ...via, "-H", "X-Note: forbidden-reply", "http://echo.example/echo"]);
    expect(hit.code).toBe(56);
    const ok = await run("curl", ["-sS", "--max-time", "5", ...via, "-w", "%{http_code}", "-o", "/dev/null", "http://echo.example/echo"]);
    expect(ok.stdout).toBe("200");
    unsub();
    await srv.stop();
    expect(seen.map((e) => [e.action, (e.detail as { stage: string }).stage])).toEqual([["allow", "payload"], ["rst", "server"], ["allow", "payload"]]);
  });
});

describe("per-request mode", () => {
  it("judges every request on a kept-alive connection when the host has URL-path rules", async () => {
    const seen: Record<string, unknown>[] = [];
    const unsub = lab.eventLog.subscribe((e) => seen.push(e as unknown as Record<string, unknown>));
    const r = await curl(["-x", proxy(lab), "-w", "%{http_code} %{num_connects}\n", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
      "http://translate.example/", "http://translate.example/translate?u=http://news.example/", "http://translate.example/about"]);
    unsub();
    expect(r.stdout.trim().split("\n")).toEqual(["200 1", "403 0", "200 0"]);
    const perRequest = seen.filter((e) => (e.detail as { stage: string }).stage === "request");
    expect(perRequest.map((e) => [e.action, (e.observation as { path: string }).path])).toEqual([
      ["allow", "/"], ["blockpage", "/translate?u=http://news.example/"], ["allow", "/about"],
    ]);
  });
});

describe("networks and bad input", () => {
  it("the proxy username chooses the client's network; unknown names are refused", async () => {
    expect((await curl(["-x", proxy(lab), "-w", "%{http_code}", "-o", "/dev/null", "http://net.example/"])).stdout).toBe("200");
    const other = await curl(["-x", proxy(lab), "-U", "other:x", "-w", " %{http_code}", "http://net.example/"]);
    expect(other.stdout).toBe("other 403");
    expect((await curl(["-x", proxy(lab), "-U", "nope:x", "-w", "%{http_code}", "-o", "/dev/null", "http://net.example/"])).stdout).toBe("407");
    expect((await curl(["--socks5-hostname", socksAddr(lab), "--proxy-user", "other:x", "-w", " %{http_code}", "http://net.example/"])).stdout).toBe("other 403");
    expect((await curl(["--socks5-hostname", socksAddr(lab), "--proxy-user", "nope:x", "http://net.example/"])).code).toBe(97);
  });

  it("garbage, oversized heads and random first bytes are counted and never stop the proxies", async () => {
    const rawTo = (port: number, bytes: Buffer | string): Promise<Buffer> => new Promise((resolve) => {
      const s = connect(port, "127.0.0.1", () => s.write(bytes));
      const chunks: Buffer[] = [];
      s.on("data", (d) => chunks.push(d));
      s.on("error", () => undefined);
      s.on("close", () => resolve(Buffer.concat(chunks)));
      setTimeout(() => s.destroy(), 1000);
    });
    const before = { ...lab.proxyStats.http };
    expect((await rawTo(lab.endpoints.httpProxy!.port, "\x00\x01\x02 garbage\r\n\r\n")).toString()).toMatch(/^HTTP\/1\.1 400/);
    expect((await rawTo(lab.endpoints.httpProxy!.port, `GET http://x.example/ HTTP/1.1\r\nX: ${"y".repeat(20_000)}\r\n\r\n`)).toString()).toMatch(/^HTTP\/1\.1 431/);
    expect(lab.proxyStats.http.badRequests).toBe(before.badRequests + 2);
    expect((await rawTo(lab.endpoints.socks!.port, Buffer.from([4, 1, 0, 80, 1, 2, 3, 4, 0]))).length).toBe(0);
    // Random first bytes through real tunnels.
    let seed = 99;
    const rand = (): number => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    for (let i = 0; i < 200; i++) {
      const t = await socks(lab.endpoints.socks!.port, `fuzz${i}.example`, 443);
      const b = Buffer.alloc(1 + Math.floor(rand() * 600));
      for (let j = 0; j < b.length; j++) b[j] = Math.floor(rand() * 256);
      if (i % 3 === 0) b[0] = 0x16;
      t.socket.write(b);
      t.socket.destroy();
    }
    await new Promise((r) => setTimeout(r, 300));
    expect((await curl(["-x", proxy(lab), "-o", "/dev/null", "-w", "%{http_code}", "https://after.example/"])).stdout).toBe("200");
  });
});
