import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import dnsPacket from "dns-packet";
import { startLab, type Lab } from "../../src/index.js";
import { tempDir } from "../helpers/profiles.js";
import { run, sClient } from "../helpers/tools.js";

let lab: Lab;
let port: number;
let caFile: string;
const curl = (name: string, path = "/", extra: string[] = []) =>
  run("curl", ["-sS", "--max-time", "10", "--cacert", caFile, "--resolve", `${name}:${port}:127.0.0.1`, ...extra, `https://${name}:${port}${path}`]);

function raw(bytes: Buffer | string, wait = 300): Promise<Buffer> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1", () => s.write(bytes));
    const chunks: Buffer[] = [];
    s.on("data", (d) => chunks.push(d));
    s.on("error", () => undefined);
    s.on("close", () => resolve(Buffer.concat(chunks)));
    setTimeout(() => { s.destroy(); resolve(Buffer.concat(chunks)); }, wait);
  });
}

beforeAll(async () => {
  lab = await startLab({ profiles: ["example-basics"], confdir: tempDir() });
  port = lab.origin!.address.port;
  caFile = lab.pki.authority("lab").certFile;
});
afterAll(() => lab.stop());

describe("the world's origin, with real clients", () => {
  it("curl --cacert <lab CA> gets the site page over HTTPS, the same bytes every time", async () => {
    const a = await curl("anything.example");
    expect(a.code).toBe(0);
    expect(a.stdout).toContain("<h1>anything.example</h1>");
    expect((await curl("anything.example")).stdout).toBe(a.stdout);
    const other = await startLab({ profiles: ["example-basics"], confdir: tempDir() });
    const b = await run("curl", ["-sS", "-k", "--resolve", `anything.example:${other.origin!.address.port}:127.0.0.1`, `https://anything.example:${other.origin!.address.port}/`]);
    await other.stop();
    expect(b.stdout).toBe(a.stdout);
  });

  it("speaks h2 and HTTP/1.1 by ALPN; /bytes/N, /echo and /status/N", async () => {
    const h2 = await curl("a.example", "/bytes/100000", ["--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code} %{size_download}"]);
    expect(h2.stdout).toBe("2 200 100000");
    const h1 = await curl("a.example", "/bytes/5", ["--http1.1", "-w", " %{http_version}"]);
    expect(h1.stdout).toBe("chok 1.1".replace("chok", "choke"));
    const echo = await curl("b.example", "/echo", ["--http1.1", "-H", "X-Probe: yes"]);
    expect(echo.stdout).toMatch(/^GET \/echo HTTP\/1\.1\r\n/);
    expect(echo.stdout).toContain("X-Probe: yes");
    const status = await curl("c.example", "/status/451", ["-o", "/dev/null", "-w", "%{http_code}"]);
    expect(status.stdout).toBe("451");
    const plain = await run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: plain.example", `http://127.0.0.1:${port}/status/404`]);
    expect(plain.stdout).toBe("404");
  });

  it("openssl s_client verifies the origin's certificate for the SNI name (return code 0)", async () => {
    const r = await sClient(["-connect", `127.0.0.1:${port}`, "-servername", "x.example", "-CAfile", caFile, "-verify_return_error"]);
    expect(r.stdout).toMatch(/subject=CN ?= ?x\.example/);
    expect(r.stdout).toMatch(/issuer=CN ?= ?chokepoint lab CA/);
    expect(r.stdout).toMatch(/Verify return code: 0 \(ok\)/);
  });

  it("a state-CA leaf shows the documented issuer and chains to the stand-in root (openssl verify)", async () => {
    const dir = tempDir();
    const leaf = lab.pki.leaf({ names: ["www.google.com"], ca: "qaznet" });
    const [qLeaf, qInter] = leaf.chainPem.split(/(?<=-----END CERTIFICATE-----\r?\n)/);
    writeFileSync(join(dir, "leaf.pem"), qLeaf!);
    writeFileSync(join(dir, "inter.pem"), qInter!);
    writeFileSync(join(dir, "root.pem"), lab.pki.authority("qaznet").certPem);
    const v = await run("openssl", ["verify", "-CAfile", join(dir, "root.pem"), "-untrusted", join(dir, "inter.pem"), join(dir, "leaf.pem")]);
    expect(v.stdout).toContain("leaf.pem: OK");
    const issuer = await run("openssl", ["x509", "-noout", "-issuer", "-in", join(dir, "leaf.pem")]);
    expect(issuer.stdout).toMatch(/issuer=C ?= ?KZ, CN ?= ?Security Certificate/);
    const isca = lab.pki.leaf({ names: ["vk.com"], ca: "isca" });
    const [l, inter] = isca.chainPem.split(/(?<=-----END CERTIFICATE-----\r?\n)/);
    writeFileSync(join(dir, "isca-leaf.pem"), l!);
    writeFileSync(join(dir, "isca-inter.pem"), inter!);
    writeFileSync(join(dir, "isca-root.pem"), lab.pki.authority("isca").certPem);
    const vi = await run("openssl", ["verify", "-CAfile", join(dir, "isca-root.pem"), "-untrusted", join(dir, "isca-inter.pem"), join(dir, "isca-leaf.pem")]);
    expect(vi.stdout).toContain("isca-leaf.pem: OK");
  });

  it("presents broken certificates where the world asks for them", async () => {
    expect((await curl("expired.badcert.example")).stderr).toMatch(/expired/);
    expect((await curl("wrong-name.badcert.example")).code).toBe(60);
    expect((await curl("self-signed.badcert.example")).code).toBe(60);
  });

  it("hosts DoH stand-ins that answer from the world (wire format and JSON)", async () => {
    const q = dnsPacket.encode({ type: "query", id: 0, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: "A", name: "blog.wordpress.com", class: "IN" }] });
    const wire = await run("curl", ["-sS", "--cacert", caFile, "--resolve", `dns.google:${port}:127.0.0.1`, "-H", "accept: application/dns-message", `https://dns.google:${port}/dns-query?dns=${q.toString("base64url")}`]);
    const answer = dnsPacket.decode(Buffer.from(wire.stdout, "latin1"));
    expect(answer.answers!.map((a) => (a as { data: unknown }).data)).toEqual(["198.18.50.10", "198.18.50.11", "198.18.50.12"]);
    const json = await run("curl", ["-sS", "--cacert", caFile, "--resolve", `cloudflare-dns.com:${port}:127.0.0.1`, "-H", "accept: application/dns-json", `https://cloudflare-dns.com:${port}/dns-query?name=gone.invalid&type=A`]);
    expect(JSON.parse(json.stdout)).toMatchObject({ Status: 3 });
  });

  it("echoes plain TCP for other destination ports (PROXY header from the lab's parts)", async () => {
    const r = await raw(`PROXY TCP4 198.18.1.2 198.19.3.4 40000 7000 ${lab.origin!.secret}\r\nhello, echo`);
    expect(r.toString()).toBe("hello, echo");
    // A local process that forges a destination without the lab's secret is not served.
    const before = (await lab.origin!.statsNow()).badProxyHeaders;
    const forged = await raw("PROXY TCP4 198.18.1.2 198.19.3.4 40000 7000\r\nhello, echo");
    expect(forged.length).toBe(0);
    const wrong = await raw("PROXY TCP4 198.18.1.2 198.19.3.4 40000 7000 0123456789abcdef0123456789abcdef\r\nhello, echo");
    expect(wrong.length).toBe(0);
    expect((await lab.origin!.statsNow()).badProxyHeaders).toBe(before + 2);
    const unknown = await raw(Buffer.from([0x13, 0x37, 0x00, 0xff]));
    expect([...unknown]).toEqual([0x13, 0x37, 0x00, 0xff]);
  });

  it("handles bad input: long, IP-literal, missing and non-ASCII SNI, malformed request lines; keeps serving", async () => {
    const before = { ...(await lab.origin!.statsNow()) };
    const long = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`; // 253 characters, the most DNS allows
    const l = await sClient(["-connect", `127.0.0.1:${port}`, "-servername", long, "-CAfile", caFile]);
    expect(l.stdout).toMatch(/Verify return code: 0/);
    const ip = await sClient(["-connect", `127.0.0.1:${port}`, "-servername", "198.19.7.7", "-CAfile", caFile]);
    expect(ip.stdout).toMatch(/subject=CN ?= ?198\.19\.7\.7/);
    const none = await sClient(["-connect", `127.0.0.1:${port}`, "-noservername", "-CAfile", caFile]);
    expect(none.stdout).toMatch(/subject=CN ?= ?127\.0\.0\.1/);
    const utf8 = await sClient(["-connect", `127.0.0.1:${port}`, "-servername", "\u00e9t\u00e9.example"]);
    expect(utf8.stdout).not.toMatch(/subject=/);
    const bad = await raw("GET /\x01 HTTP/9.9\r\nHost: \x00\r\n\r\n");
    expect(bad.toString()).toMatch(/^HTTP\/1\.1 400/);
    const method = await raw("FOOBAR / HTTP/1.1\r\n\r\n");
    expect(method.toString()).toMatch(/^HTTP\/1\.1 400/);
    const huge = await raw(`GET / HTTP/1.1\r\nHost: x.example\r\nX-Big: ${"x".repeat(64 * 1024)}\r\n\r\n`);
    expect(huge.toString()).toMatch(/^HTTP\/1\.1 4\d\d/);
    const after = await lab.origin!.statsNow();
    expect(after.badSni).toBeGreaterThan(before.badSni);
    expect(after.noSni).toBeGreaterThan(before.noSni);
    expect(after.badRequests).toBeGreaterThanOrEqual(before.badRequests + 3);
    expect((await curl("still.example")).stdout).toContain("<h1>still.example</h1>");
  });
});
