// X.509 certificates built with node-forge (structure) and signed with node:crypto
// (forge's pure-JS RSA signature costs ~25 ms; node:crypto ~0.3 ms).
import { createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from "node:crypto";
import forge from "node-forge";

const { pki, asn1 } = forge;

export interface Subject { CN: string; O?: string; OU?: string; C?: string; L?: string; ST?: string }
export type AltName = { dns: string } | { ip: string };

export interface CertSpec {
  subject: Subject | forge.pki.CertificateField[];
  issuer: Subject | forge.pki.CertificateField[];
  /** Public key of the certificate's subject (PEM). */
  publicKeyPem: string;
  /** Key that signs (the issuer's). */
  signingKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  ca?: boolean;
  /** pathLen for CA certificates. */
  pathLen?: number;
  altNames?: AltName[];
  serialHex?: string;
  /** Only the subjectAltName extension (a leaf forged as the 2019 box did: "all other extensions removed"). */
  bare?: boolean;
}

const FIELD_SHORT: Record<string, string> = { CN: "CN", O: "O", OU: "OU", C: "C", L: "L", ST: "ST" };

export function toFields(s: Subject | forge.pki.CertificateField[]): forge.pki.CertificateField[] {
  if (Array.isArray(s)) return s;
  return Object.entries(s)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ({ shortName: FIELD_SHORT[k] ?? k, value: v as string, valueTagClass: asn1.Type.UTF8 as unknown as number } as forge.pki.CertificateField));
}

const pubCache = new Map<string, forge.pki.PublicKey>();
function forgePublicKey(pem: string): forge.pki.PublicKey {
  let k = pubCache.get(pem);
  if (!k) {
    k = pki.publicKeyFromPem(pem);
    pubCache.set(pem, k);
  }
  return k;
}

/** Builds and signs a certificate; returns its DER and PEM. */
export function buildCertificate(spec: CertSpec): { der: Buffer; pem: string } {
  const cert = pki.createCertificate();
  cert.publicKey = forgePublicKey(spec.publicKeyPem);
  // A positive serial in minimal DER: the first byte 0x01-0x7f (0x00 would be padding that
  // OpenSSL 3 rejects as "illegal padding": one leaf in 128, found by the soak).
  cert.serialNumber = spec.serialHex ?? ((randomBytes(1)[0]! % 0x7f) + 1).toString(16).padStart(2, "0") + randomBytes(15).toString("hex");
  cert.validity.notBefore = spec.notBefore;
  cert.validity.notAfter = spec.notAfter;
  cert.setSubject(toFields(spec.subject));
  cert.setIssuer(toFields(spec.issuer));
  const exts: object[] = [];
  if (spec.bare) { /* only the SANs below */ } else if (spec.ca) {
    exts.push({ name: "basicConstraints", cA: true, critical: true, ...(spec.pathLen !== undefined ? { pathLenConstraint: spec.pathLen } : {}) });
    exts.push({ name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true });
  } else {
    exts.push({ name: "basicConstraints", cA: false });
    exts.push({ name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true });
    exts.push({ name: "extKeyUsage", serverAuth: true, clientAuth: true });
  }
  if (spec.altNames?.length) {
    exts.push({
      name: "subjectAltName",
      altNames: spec.altNames.map((a) => ("dns" in a ? { type: 2, value: a.dns } : { type: 7, ip: a.ip })),
    });
  }
  if (!spec.bare) exts.push({ name: "subjectKeyIdentifier" });
  cert.setExtensions(exts);
  cert.siginfo.algorithmOid = pki.oids.sha256WithRSAEncryption!;
  cert.signatureOid = pki.oids.sha256WithRSAEncryption!;
  // getTBSCertificate exists in node-forge but not in its type definitions.
  const tbs = asn1.toDer((pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert)).getBytes();
  cert.signature = sign("sha256", Buffer.from(tbs, "binary"), spec.signingKey).toString("binary");
  const der = Buffer.from(asn1.toDer(pki.certificateToAsn1(cert)).getBytes(), "binary");
  return { der, pem: pki.certificateToPem(cert) };
}

/** What a forged leaf copies from a real certificate: subject, SANs, validity and serial. */
export interface Identity {
  subject: forge.pki.CertificateField[];
  altNames: AltName[];
  /** ISO instants. */
  notBefore?: string;
  notAfter?: string;
  serialHex?: string;
}

/** The subject fields, SANs, validity and serial of a certificate (DER), to copy them into a forged one. */
export function identityOf(der: Buffer): Identity {
  const cert = pki.certificateFromAsn1(asn1.fromDer(der.toString("binary")));
  const subject = cert.subject.attributes.map((a) => ({ ...(a.shortName ? { shortName: a.shortName } : { type: a.type }), value: a.value } as forge.pki.CertificateField));
  const san = cert.getExtension("subjectAltName") as { altNames?: { type: number; value?: string; ip?: string }[] } | null;
  const altNames: AltName[] = [];
  for (const a of san?.altNames ?? []) {
    if (a.type === 2 && a.value) altNames.push({ dns: a.value });
    else if (a.type === 7 && a.ip) altNames.push({ ip: a.ip });
  }
  return { subject, altNames, notBefore: cert.validity.notBefore.toISOString(), notAfter: cert.validity.notAfter.toISOString(), serialHex: cert.serialNumber };
}

export function publicPemOf(key: KeyObject): string {
  return createPublicKey(key).export({ type: "spki", format: "pem" }).toString();
}

export function keyFromPem(pem: string): KeyObject {
  return createPrivateKey(pem);
}

/** Pure-JS (node-forge) signing of the same certificate: the baseline of the pki benchmark. */
export function buildCertificateWithForgeSigning(spec: CertSpec, forgeKey: forge.pki.rsa.PrivateKey): string {
  const cert = pki.createCertificate();
  cert.publicKey = forgePublicKey(spec.publicKeyPem);
  cert.serialNumber = "01" + randomBytes(15).toString("hex");
  cert.validity.notBefore = spec.notBefore;
  cert.validity.notAfter = spec.notAfter;
  cert.setSubject(toFields(spec.subject));
  cert.setIssuer(toFields(spec.issuer));
  cert.setExtensions([{ name: "basicConstraints", cA: false }, { name: "subjectAltName", altNames: (spec.altNames ?? []).map((a) => ("dns" in a ? { type: 2, value: a.dns } : { type: 7, ip: a.ip })) }]);
  cert.sign(forgeKey, forge.md.sha256.create());
  return pki.certificateToPem(cert);
}
