import { describe, expect, it } from "vitest";
import { createHash, randomInt } from "node:crypto";
import { classify, isTor2012, looksFullyEncrypted, looksRandomLabel, parseHttpHead, TOR_CIPHER_PREFIX, TOR_CIPHERS_NOW } from "../../src/dpi/classify.js";
import { parseClientHello } from "../../src/dpi/clienthello.js";
import { buildClientHello, captureClientHello } from "../helpers/tls.js";

describe("ClientHello parsing and fingerprints", () => {
  it("reads SNI, ALPN, versions and computes JA3/JA4 of a real client's hello", async () => {
    const bytes = await captureClientHello("www.example.kz", { alpn: ["h2", "http/1.1"] });
    const r = parseClientHello(bytes);
    if (!("hello" in r)) throw new Error(JSON.stringify(r));
    const h = r.hello;
    expect(h.sni).toBe("www.example.kz");
    expect(h.alpn).toEqual(["h2", "http/1.1"]);
    expect(h.maxVersion).toBe(0x0304);
    expect(h.ja3.split(",")).toHaveLength(5);
    expect(h.ja3.split(",")[0]).toBe("771");
    expect(h.ja3Hash).toBe(createHash("md5").update(h.ja3).digest("hex"));
    expect(h.ja4).toMatch(/^t13d\d{4}h2_[0-9a-f]{12}_[0-9a-f]{12}$/);
    const c = classify(bytes);
    expect(c.kind).toBe("tls");
    if (c.kind === "tls") expect(c.fingerprints).toEqual(["tls", `ja3:${h.ja3Hash}`, `ja4:${h.ja4}`]);
  });

  it("asks for more bytes when a ClientHello spans several records or segments", async () => {
    const bytes = await captureClientHello("split.example");
    expect(classify(bytes.subarray(0, 40))).toEqual({ kind: "partial", need: expect.any(Number) });
    expect(classify(bytes.subarray(0, 40), true)).toMatchObject({ kind: "other", protocol: "tls" });
    // The same handshake message cut into two TLS records (as large post-quantum hellos are).
    const hs = bytes.subarray(5);
    const cut = 100;
    const rec = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0x16, 0x03, 0x01, b.length >> 8, b.length & 0xff]), b]);
    const two = Buffer.concat([rec(hs.subarray(0, cut)), rec(hs.subarray(cut))]);
    const r = parseClientHello(two);
    expect("hello" in r && r.hello.sni).toBe("split.example");
  });

  it("recognises Tor's random server name (tor-sni), whatever its cipher list", () => {
    const fps = (sni: string): string[] => (classify(buildClientHello({ ciphers: [0x1301, 0xc02b], sni })) as { fingerprints: string[] }).fingerprints;
    // Names a present-day tor client sent through the lab: 4 to 25 base32 characters, .com.
    for (const sni of ["www.bv22eestn3vk5lsz.com", "www.q3zp.com", "www.abcdefghijklmnopqrstuvwxy.com", "www.lbuqcx6v7ng.net"]) expect(fps(sni)).toContain("tor-sni");
    for (const sni of ["www.example.kz", "www.bv22eestn3vk5lsz.org", "www.abc.com", "www.b1.com", "mail.q3zpxy.com", "www.abcdefghijklmnopqrstuvwxyz.com"]) expect(fps(sni)).not.toContain("tor-sni");
  });

  it("recognises every name a tor client draws, short letter-only ones by tor's cipher list, and not such a name from openssl s_client", () => {
    // Tor 0.4.9.11's list and openssl s_client's default (OpenSSL 3), both captured in the lab.
    const tor = [0x1301, 0x1303, 0x1302, ...TOR_CIPHERS_NOW, 0x00ff];
    const sclient = [0x1302, 0x1303, 0x1301, 0xc02c, 0xc030, 0x9f, 0xcca9, 0xcca8, 0xccaa, 0xc02b, 0xc02f, 0x9e, 0xc024, 0xc028, 0x6b, 0xc023, 0xc027, 0x67, 0xc00a, 0xc014, 0x39, 0xc009, 0xc013, 0x33, 0x9d, 0x9c, 0x3d, 0x3c, 0x35, 0x2f, 0xff];
    const fps = (sni: string, ciphers: number[]): string[] => (classify(buildClientHello({ ciphers, sni })) as { fingerprints: string[] }).fingerprints;
    // crypto_random_hostname(4, 25, "www.", ".com"): a uniform length, base32 characters.
    const b32 = "abcdefghijklmnopqrstuvwxyz234567";
    let missedByLabel = 0;
    for (let i = 0; i < 4000; i++) {
      const label = Array.from({ length: 4 + randomInt(22) }, () => b32[randomInt(32)]).join("");
      expect(fps(`www.${label}.com`, tor), label).toContain("tor-sni");
      if (!looksRandomLabel(label)) missedByLabel++;
    }
    // The label alone misses some (the ones the cipher list catches): the reason for it.
    expect(missedByLabel).toBeGreaterThan(0);
    for (const n of ["bing", "ebay", "yahoo", "apple", "adobe", "zoom"]) {
      expect(fps(`www.${n}.com`, tor)).toContain("tor-sni");
      expect(fps(`www.${n}.com`, sclient)).not.toContain("tor-sni");
    }
  });

  it("never takes an ordinary site for Tor's random name, with or without ALPN (issue 18: www.google.com on KazTransCom)", () => {
    const fps = (sni: string, alpn?: string): string[] => (classify(buildClientHello({ ciphers: [0x1301, 0xc02b], sni, ...(alpn ? { extensions: [[16, Buffer.from([0, alpn.length + 1, alpn.length, ...Buffer.from(alpn)])]] } : {}) })) as { fingerprints: string[] }).fingerprints;
    const ordinary = ["google", "facebook", "youtube", "twitter", "example", "pinterest", "wikipedia", "amazon", "instagram", "linkedin", "netflix", "microsoft", "yahoo", "reddit", "wordpress", "tumblr", "twitch", "airbnb", "kaspi", "kolesa", "krisha", "tengrinews", "azattyq", "bambuser", "slideshare"];
    for (const n of ordinary) {
      expect(fps(`www.${n}.com`)).not.toContain("tor-sni");
      expect(fps(`www.${n}.com`, "h2")).not.toContain("tor-sni");
    }
    // Tor's own names still match (no ALPN), but not when a client offers ALPN.
    expect(fps("www.bv22eestn3vk5lsz.com")).toContain("tor-sni");
    expect(fps("www.bv22eestn3vk5lsz.com", "http/1.1")).not.toContain("tor-sni");
  });

  it("recognises Tor's 2012-era ClientHello and not a browser's", async () => {
    const tor = buildClientHello({ ciphers: [...TOR_CIPHER_PREFIX, 0xc007, 0xc009, 0x0033, 0x0005, 0x0004, 0x002f, 0xfeff, 0x000a] });
    const c = classify(tor);
    expect(c.kind === "tls" && c.fingerprints[0]).toBe("tor-2012");
    const withSni = buildClientHello({ ciphers: [...TOR_CIPHER_PREFIX, 0xfeff], sni: "www.randomname.net" });
    expect(classify(withSni).kind === "tls" && (classify(withSni) as { fingerprints: string[] }).fingerprints).toContain("tor-2012");
    const browser = await captureClientHello("www.example.kz");
    const b = parseClientHello(browser);
    expect("hello" in b && isTor2012(b.hello)).toBe(false);
    const noMarker = buildClientHello({ ciphers: TOR_CIPHER_PREFIX });
    expect((classify(noMarker) as { fingerprints: string[] }).fingerprints).not.toContain("tor-2012");
  });

  it("rejects garbage without throwing", () => {
    for (const bad of [Buffer.from([0x16, 0x03, 0x01, 0, 0]), Buffer.from([0x16, 0x03, 0x01, 0, 4, 2, 0, 0, 0]), Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 1])]) {
      expect(() => classify(bad, true)).not.toThrow();
    }
  });
});

describe("other protocols", () => {
  it("HTTP request heads: Host, path, absolute-form, partial", () => {
    const h = parseHttpHead(Buffer.from("GET /a?b HTTP/1.1\r\nHost: WWW.Example.org\r\nX: y\r\n\r\n"));
    expect(h).toMatchObject({ method: "GET", host: "WWW.Example.org", path: "/a?b" });
    expect(parseHttpHead(Buffer.from("GET http://x.example:8080/p HTTP/1.1\r\n\r\n"))).toMatchObject({ host: "x.example:8080", path: "/p" });
    expect(parseHttpHead(Buffer.from("GET / HTTP/1.1\r\nHost: x"))).toBe("partial");
    expect(parseHttpHead(Buffer.from("\x00\x01binary"))).toBeUndefined();
  });

  it("SSH banners, OpenVPN resets, fully-encrypted traffic (Wu et al. 2023)", () => {
    expect(classify(Buffer.from("SSH-2.0-OpenSSH_9.2p1\r\n"))).toMatchObject({ protocol: "ssh", fingerprints: ["ssh"] });
    const ovpn = Buffer.concat([Buffer.from([0, 14, 0x38]), Buffer.alloc(14, 1)]);
    expect(classify(ovpn)).toMatchObject({ protocol: "openvpn" });
    let seed = 7;
    const random = Buffer.alloc(600);
    for (let i = 0; i < random.length; i++) random[i] = (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
    expect(looksFullyEncrypted(random)).toBe(true);
    expect(classify(random)).toMatchObject({ protocol: "encrypted", fingerprints: ["fully-encrypted"] });
    expect(looksFullyEncrypted(Buffer.from("hello world, this is text"))).toBe(false);
    const zeros = Buffer.alloc(600, 0);
    expect(looksFullyEncrypted(zeros)).toBe(false);
  });

  it("classifies 100,000 random and mutated first-byte sequences without throwing", async () => {
    const seedsIn = [await captureClientHello("fuzz.example"), Buffer.from("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), Buffer.from("SSH-2.0-x\r\n")];
    let seed = 42;
    const rand = (): number => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const kinds: Record<string, number> = {};
    for (let i = 0; i < 100_000; i++) {
      let b: Buffer;
      if (i % 2) {
        b = Buffer.alloc(Math.floor(rand() * 700));
        for (let j = 0; j < b.length; j++) b[j] = Math.floor(rand() * 256);
      } else {
        b = Buffer.from(seedsIn[i % seedsIn.length]!);
        for (let f = 0; f < 1 + Math.floor(rand() * 8); f++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
        if (rand() < 0.3) b = b.subarray(0, Math.floor(rand() * b.length));
      }
      const c = classify(b, rand() < 0.5);
      kinds[c.kind] = (kinds[c.kind] ?? 0) + 1;
    }
    expect(Object.keys(kinds).sort()).toEqual(["http", "other", "partial", "tls"]);
  });
});
