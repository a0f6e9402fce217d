import { describe, expect, it } from "vitest";
import { X509Certificate } from "node:crypto";
import { statSync, readFileSync } from "node:fs";
import { join } from "node:path";
import forge from "node-forge";
import { Pki } from "../../src/pki/pki.js";
import { identityOf } from "../../src/pki/sign.js";
import { tempDir } from "../helpers/profiles.js";

const DAY = 86_400_000;

describe("PKI", () => {
  const dir = tempDir();
  const pki = new Pki(dir);

  it("creates the lab CA on first use in the config directory, key mode 0600, and reuses it", () => {
    const ca = pki.authority("lab");
    expect(statSync(ca.keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "leaf.key"), { throwIfNoEntry: false })).toBeUndefined();
    const again = new Pki(dir).authority("lab");
    expect(again.certPem).toBe(ca.certPem);
    const x = new X509Certificate(ca.certPem);
    expect(x.ca).toBe(true);
    expect(x.subject).toContain("CN=chokepoint lab CA");
  });

  it("issues leaves for names and addresses that verify against the CA", () => {
    const ca = new X509Certificate(pki.authority("lab").certPem);
    const leaf = new X509Certificate(pki.leaf({ names: ["anything.example"] }).certPem);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.checkHost("anything.example")).toBe("anything.example");
    expect(leaf.checkHost("other.example")).toBeUndefined();
    const ipLeaf = new X509Certificate(pki.leaf({ names: ["198.19.1.2"] }).certPem);
    expect(ipLeaf.checkIP("198.19.1.2")).toBe("198.19.1.2");
    expect(statSync(join(dir, "leaf.key")).mode & 0o777).toBe(0o600);
  });

  it("caches a leaf per name and shares one leaf key", () => {
    const a = pki.leaf({ names: ["cache.example"] });
    expect(pki.leaf({ names: ["cache.example"] })).toBe(a);
    const b = pki.leaf({ names: ["other-cache.example"] });
    expect(new X509Certificate(a.certPem).publicKey.export({ format: "der", type: "spki" }))
      .toEqual(new X509Certificate(b.certPem).publicKey.export({ format: "der", type: "spki" }));
  });

  it("stand-in state roots carry the documented subject and validity", () => {
    const q = new X509Certificate(pki.authority("qaznet").certPem);
    expect(q.subject).toBe("C=KZ\nCN=Qaznet Trust Network");
    expect((q.publicKey.asymmetricKeyDetails?.modulusLength)).toBe(4096);
    expect(new Date(q.validFrom).toISOString()).toBe("2016-02-02T05:41:00.000Z");
    expect(new Date(q.validTo).toISOString()).toBe("2046-02-02T05:41:00.000Z");
    const isca = new X509Certificate(pki.authority("isca-2020").certPem);
    expect(isca.subject).toBe("CN=Information Security Certification Authority CA");
    expect(new Date(isca.validFrom).toISOString()).toBe("2020-02-28T04:08:03.000Z");
    const issued = pki.leaf({ names: ["www.google.com"], ca: "qaznet", at: Date.parse("2019-07-20T12:00:00+06:00") });
    const [leafPem, interPem] = issued.chainPem.split(/(?<=-----END CERTIFICATE-----\r?\n)/);
    const inter = new X509Certificate(interPem!);
    // leaf <- "C=KZ, CN=Security Certificate" (3 years) <- the root (IMC 2020 App. A).
    expect(new X509Certificate(leafPem!).issuer).toBe("C=KZ\nCN=Security Certificate");
    expect(inter.subject).toBe("C=KZ\nCN=Security Certificate");
    expect(Date.parse(inter.validTo) - Date.parse(inter.validFrom)).toBe(3 * 365 * DAY);
    expect(new X509Certificate(leafPem!).verify(inter.publicKey)).toBe(true);
    expect(inter.verify(q.publicKey)).toBe(true);
  });

  it("ISCA leaves come from a 75-day intermediate with O=ISCA", () => {
    const leaf = pki.leaf({ names: ["www.facebook.com"], ca: "isca" });
    const [leafPem, interPem] = leaf.chainPem.split(/(?<=-----END CERTIFICATE-----\r?\n)/);
    const inter = new X509Certificate(interPem!);
    expect(inter.subject).toContain("O=ISCA");
    expect(Date.parse(inter.validTo) - Date.parse(inter.validFrom)).toBe(75 * DAY);
    expect(Date.parse(inter.validFrom)).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(inter.validTo)).toBeGreaterThan(Date.now());
    expect(new X509Certificate(leafPem!).verify(inter.publicKey)).toBe(true);
    expect(inter.verify(new X509Certificate(pki.authority("isca").certPem).publicKey)).toBe(true);
  });

  it("copies subject and SANs from a real server's certificate (the 2019 behaviour)", () => {
    const real = pki.leaf({ names: ["www.youtube.com", "youtube.com"] });
    const id = identityOf(real.der);
    const forged = new X509Certificate(pki.leaf({ names: ["sni-differs.example"], ca: "qaznet", copy: id }).certPem);
    expect(forged.subject).toBe("CN=www.youtube.com");
    expect(forged.subjectAltName).toBe("DNS:www.youtube.com, DNS:youtube.com");
    expect(forged.issuer).toBe("C=KZ\nCN=Security Certificate");
  });

  it("forges a Qaznet leaf as IMC 2020 documents: validity shifted back, serial mangled, no extensions but SANs, a host key with e=3", () => {
    const realPem = pki.leaf({ names: ["www.facebook.com"] }).certPem;
    const real = new X509Certificate(realPem);
    const id = identityOf(pki.leaf({ names: ["www.facebook.com"] }).der);
    const at = (d: string): number => Date.parse(`${d}T12:00:00+06:00`);
    const forged = (d: string): X509Certificate => new X509Certificate(pki.leaf({ names: ["www.facebook.com"], ca: "qaznet", copy: id, at: at(d) }).certPem);
    const early = forged("2019-07-18"), mid = forged("2019-07-20"), late = forged("2019-08-01");
    const shift = (c: X509Certificate): number => (Date.parse(real.validFrom) - Date.parse(c.validFrom)) / 3600_000;
    expect([shift(early), shift(mid), shift(late)]).toEqual([6, 6, 24]); // -6 h, and -24 h from 30 July
    expect(Date.parse(real.validTo) - Date.parse(late.validTo)).toBe(24 * 3600_000);
    expect(early.publicKey.asymmetricKeyDetails).toMatchObject({ modulusLength: 1024, publicExponent: 3n }); // 1024-bit until 19 July
    expect(mid.publicKey.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 3n });
    expect(mid.serialNumber.slice(0, -8)).toBe(real.serialNumber.slice(0, -8));
    expect(mid.serialNumber.slice(-8)).not.toBe(real.serialNumber.slice(-8));
    expect(mid.subjectAltName).toBe("DNS:www.facebook.com");
    // No basicConstraints, keyUsage, extKeyUsage or key identifier: only the SANs.
    const der = mid.raw.toString("binary");
    for (const oid of ["\x55\x1d\x13", "\x55\x1d\x0f", "\x55\x1d\x25", "\x55\x1d\x0e"]) expect(der.includes(oid)).toBe(false);
    expect(der.includes("\x55\x1d\x11")).toBe(true);
  });

  it("prepares a forged host key off the event loop (the MITM path awaits it), and the leaf then uses it", async () => {
    const id = identityOf(pki.leaf({ names: ["prepared.example"] }).der);
    const req = { names: ["prepared.example"], ca: "qaznet", copy: id, at: Date.parse("2019-07-20T12:00:00+06:00") };
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await pki.prepare(req); // RSA-2048, e=3: generated in the pool, the timer keeps firing
    clearInterval(timer);
    expect(ticks).toBeGreaterThanOrEqual(1);
    const leaf = new X509Certificate(pki.leaf(req).certPem);
    expect(leaf.publicKey.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 3n });
    await pki.prepare(req); // cached: nothing to do
  });

  it("makes broken certificates on demand", () => {
    const expired = new X509Certificate(pki.leaf({ names: ["e.example"], validity: "expired" }).certPem);
    expect(Date.parse(expired.validTo)).toBeLessThan(Date.now());
    const future = new X509Certificate(pki.leaf({ names: ["f.example"], validity: "not-yet-valid" }).certPem);
    expect(Date.parse(future.validFrom)).toBeGreaterThan(Date.now());
    const wrong = new X509Certificate(pki.leaf({ names: ["w.example"], validity: "wrong-name" }).certPem);
    expect(wrong.checkHost("w.example")).toBeUndefined();
    const self = new X509Certificate(pki.leaf({ names: ["s.example"], validity: "self-signed" }).certPem);
    expect(self.checkIssued(new X509Certificate(pki.authority("lab").certPem))).toBe(false);
    expect(self.verify(self.publicKey)).toBe(true);
  });

  it("exports PEM, DER and PKCS#12", () => {
    const pem = pki.export("lab", "pem").toString();
    expect(pem).toBe(readFileSync(pki.authority("lab").certFile, "utf8"));
    expect(new X509Certificate(pki.export("lab", "der")).subject).toContain("chokepoint lab CA");
    const p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(pki.export("lab", "p12").toString("binary")), "");
    const bags = p12.getBags({ bagType: forge.pki.oids.certBag! })[forge.pki.oids.certBag!]!;
    expect(bags[0]!.cert!.subject.getField("CN").value).toBe("chokepoint lab CA");
  });

  it("rejects unknown authorities with a clear error", () => {
    expect(() => pki.authority("nope")).toThrow(/unknown certificate authority "nope"/);
  });
});

describe("a certificate the TLS library refuses", () => {
  it("fails that connection and is counted, never the origin (the soak found one that crashed the lab)", async () => {
    const { Origin } = await import("../../src/world/origin.js");
    const { World } = await import("../../src/world/world.js");
    const { createServer, connect } = await import("node:net");
    const broken = { leaf: () => ({ keyPem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", chainPem: "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n" }), context: () => { throw new Error("no"); } };
    const origin = new Origin(new World({ hosts: {}, nonexistent: [], certs: {} }), broken as unknown as Pki);
    const server = createServer((s) => origin.adopt(s, { src: "198.18.0.2", dst: "198.19.1.1", srcPort: 1, dstPort: 443 }, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0])));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const closed = await new Promise<boolean>((resolve) => {
      const c = connect((server.address() as { port: number }).port, "127.0.0.1");
      c.on("error", () => resolve(true));
      c.on("close", () => resolve(true));
      setTimeout(() => resolve(false), 3000);
    });
    server.close();
    expect(closed).toBe(true);
    expect(origin.stats.tlsErrors).toBe(1);
  });
});
