// The lab's PKI: authorities kept in a config directory (keys 0600, created on first use and
// reused), one RSA-2048 leaf key shared by every leaf (as mitmproxy does), leaves cached per
// name, TLS secure contexts cached per leaf.
import { generateKeyPair, generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { isIP } from "node:net";
import { join } from "node:path";
import { createSecureContext, type SecureContext } from "node:tls";
import forge from "node-forge";
import { authoritySpec, type AuthoritySpec } from "./authorities.js";
import { Lru } from "../util/lru.js";
import { buildCertificate, keyFromPem, publicPemOf, type AltName, type Identity } from "./sign.js";

const DAY = 86_400_000;
/** Leaves (and TLS contexts) kept per process: about 31 KiB each, so about 32 MiB each at the bound. */
export const DEFAULT_MAX_LEAVES = 1024;

export type Validity = "valid" | "expired" | "not-yet-valid" | "wrong-name" | "self-signed";

export interface Authority {
  spec: AuthoritySpec;
  /** The subject as the certificate on disk has it (what leaves name as their issuer). */
  subjectFields: forge.pki.CertificateField[];
  certPem: string;
  certDer: Buffer;
  key: KeyObject;
  keyFile: string;
  certFile: string;
}

export interface LeafRequest {
  /** Names (DNS names or IP literals) the leaf is for; the first is the subject CN. */
  names: string[];
  /** Authority id (default "lab"). */
  ca?: string;
  /** Subject and SANs (validity and serial too, for an authority with a `forgery`) copied from another certificate (2019 interception behaviour). */
  copy?: Identity;
  validity?: Validity;
  /** Instant that picks the intermediate period for authorities with short-lived intermediates (default now). */
  at?: number;
}

export interface Leaf { certPem: string; der: Buffer; chainPem: string; keyPem: string }

export function defaultConfdir(): string {
  return process.env.CHOKEPOINT_CONFDIR || join(homedir(), ".chokepoint");
}

export class UnknownAuthorityError extends Error {}

export class Pki {
  readonly dir: string;
  private readonly authorities = new Map<string, Authority>();
  private readonly intermediates = new Map<string, { pem: string; key: KeyObject; subject: forge.pki.CertificateField[] | { CN: string; O?: string } }>();
  /** Issued leaves and their TLS contexts, bounded (a client chooses the names): about 31 KiB a name. */
  private readonly leaves: Lru<string, Leaf>;
  private readonly contexts: Lru<string, SecureContext>;
  private leafKey: { pem: string; key: KeyObject; publicPem: string } | undefined;
  private readonly hostKeys: Lru<string, { pem: string; key: KeyObject; publicPem: string }>;
  /** Leaves issued since start (for the benchmark and status). */
  issued = 0;

  constructor(confdir: string = defaultConfdir(), opts: { maxLeaves?: number } = {}) {
    this.dir = confdir;
    this.leaves = new Lru(opts.maxLeaves ?? DEFAULT_MAX_LEAVES);
    this.contexts = new Lru(opts.maxLeaves ?? DEFAULT_MAX_LEAVES);
    this.hostKeys = new Lru(opts.maxLeaves ?? DEFAULT_MAX_LEAVES);
  }

  /** Leaves and TLS contexts held now (each at most the bound). */
  get cached(): { leaves: number; contexts: number; max: number } {
    return { leaves: this.leaves.size, contexts: this.contexts.size, max: this.leaves.max };
  }

  /** Loads an authority from the config directory, creating it on first use. */
  authority(id = "lab"): Authority {
    const hit = this.authorities.get(id);
    if (hit) return hit;
    const spec = authoritySpec(id);
    if (!spec) throw new UnknownAuthorityError(`unknown certificate authority "${id}"`);
    const caDir = join(this.dir, "ca");
    mkdirSync(caDir, { recursive: true, mode: 0o700 });
    const keyFile = join(caDir, `${id}.key`);
    const certFile = join(caDir, `${id}.pem`);
    if (!existsSync(keyFile)) {
      const key = newRsaKey(spec.bits);
      const now = Date.now();
      const { pem } = buildCertificate({
        subject: spec.subject, issuer: spec.subject,
        publicKeyPem: key.publicPem, signingKey: key.key,
        notBefore: new Date(spec.notBefore ?? now - DAY),
        notAfter: new Date(spec.notAfter ?? now + (spec.years ?? 10) * 365 * DAY),
        ca: true,
      });
      // The key is claimed first; a process that loses the race uses the winner's pair.
      if (writeExclusive(keyFile, key.pem, 0o600)) writeExclusive(certFile, pem, 0o644);
    }
    waitFor(certFile);
    chmodSync(keyFile, 0o600);
    const certPem = readFileSync(certFile, "utf8");
    const parsed = forge.pki.certificateFromPem(certPem);
    const authority: Authority = {
      spec, certPem, keyFile, certFile,
      // A root made by an older version keeps its own subject: leaves must name it as it is.
      subjectFields: parsed.subject.attributes.map((a) => ({ ...(a.shortName ? { shortName: a.shortName } : { type: a.type }), value: a.value } as forge.pki.CertificateField)),
      certDer: Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(parsed)).getBytes(), "binary"),
      key: keyFromPem(readFileSync(keyFile, "utf8")),
    };
    this.authorities.set(id, authority);
    return authority;
  }

  /** The RSA-2048 key shared by all leaves, kept in the config directory. */
  private sharedLeafKey(): { pem: string; key: KeyObject; publicPem: string } {
    if (this.leafKey) return this.leafKey;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = join(this.dir, "leaf.key");
    if (!existsSync(file)) writeExclusive(file, newRsaKey().pem, 0o600);
    const pem = readFileSync(file, "utf8");
    const key = keyFromPem(pem);
    this.leafKey = { pem, key, publicPem: publicPemOf(key) };
    return this.leafKey;
  }

  /** The issuing certificate and key for leaves of `ca` at instant `at` (an intermediate where the spec has them). */
  private issuerFor(ca: Authority, at: number): { pem: string; key: KeyObject; subject: forge.pki.CertificateField[] | { CN: string; O?: string } ; chain: string } {
    const days = ca.spec.intermediateDays;
    if (!days) return { pem: ca.certPem, key: ca.key, subject: ca.subjectFields, chain: "" };
    const rootStart = Date.parse(ca.spec.notBefore ?? "2020-01-01T00:00:00Z");
    const period = Math.floor((at - rootStart) / (days * DAY));
    const key = `${ca.spec.id}|${period}`;
    let inter = this.intermediates.get(key);
    if (!inter) {
      const leafKey = this.sharedLeafKey();
      const subject = ca.spec.intermediateSubject ?? { CN: `${ca.spec.subject.CN} intermediate` };
      const { pem } = buildCertificate({
        subject, issuer: ca.subjectFields, publicKeyPem: leafKey.publicPem, signingKey: ca.key,
        notBefore: new Date(rootStart + period * days * DAY), notAfter: new Date(rootStart + (period + 1) * days * DAY),
        ca: true, pathLen: 0,
      });
      inter = { pem, key: leafKey.key, subject };
      this.intermediates.set(key, inter);
    }
    return { ...inter, chain: inter.pem };
  }

  /** What makes two requests' leaves differ (their cache key, for leaves and TLS contexts alike). */
  private leafKeyOf(req: LeafRequest): string {
    const caId = req.ca ?? "lab";
    const spec = this.authority(caId).spec;
    const at = req.at ?? Date.now();
    const forged = spec.forgery && req.copy ? `|${shiftAt(spec.forgery, at)}h|${bitsAt(spec.forgery, at)}b` : "";
    return `${caId}|${req.validity ?? "valid"}|${req.names.join(",")}|${req.copy ? JSON.stringify(req.copy) : ""}|${spec.intermediateDays ? Math.floor(at / DAY) : ""}${forged}`;
  }

  /** Issues (or returns the cached) leaf certificate for a request. */
  leaf(req: LeafRequest): Leaf {
    const caId = req.ca ?? "lab";
    const validity = req.validity ?? "valid";
    const at = req.at ?? Date.now();
    const cacheKey = this.leafKeyOf(req);
    const hit = this.leaves.get(cacheKey);
    if (hit) return hit;
    const ca = this.authority(caId);
    const leafKey = this.sharedLeafKey();
    const now = Date.now();
    let notBefore = now - DAY, notAfter = now + 90 * DAY;
    if (validity === "expired") { notBefore = now - 60 * DAY; notAfter = now - 30 * DAY; }
    if (validity === "not-yet-valid") { notBefore = now + 30 * DAY; notAfter = now + 60 * DAY; }
    const names = validity === "wrong-name" ? req.names.map((n) => `wrong-name.${isIP(n) ? "invalid" : n}`) : req.names;
    const altNames: AltName[] = req.copy?.altNames ?? names.map((n) => (isIP(n) ? { ip: n } : { dns: n }));
    const cn = (names[0] ?? "chokepoint").slice(0, 64);
    const subject = req.copy?.subject ?? { CN: cn };
    const issuer = validity === "self-signed"
      ? { pem: "", key: leafKey.key, subject, chain: "" }
      : this.issuerFor(ca, at);
    // A forging authority copies the server's validity (shifted back) and serial (mangled),
    // leaves out every extension but the SANs, and has a key per host.
    const forgery = validity === "valid" && req.copy?.notBefore && req.copy.notAfter ? ca.spec.forgery : undefined;
    let key = leafKey;
    if (forgery) {
      const shift = shiftAt(forgery, at) * 3600_000;
      notBefore = Date.parse(req.copy!.notBefore!) - shift;
      notAfter = Date.parse(req.copy!.notAfter!) - shift;
      key = this.hostKey(`${cn}|${bitsAt(forgery, at)}`, bitsAt(forgery, at), forgery.hostKey.exponent);
    }
    const { pem, der } = buildCertificate({
      subject, issuer: issuer.subject, publicKeyPem: key.publicPem, signingKey: issuer.key,
      notBefore: new Date(notBefore), notAfter: new Date(notAfter), altNames,
      ...(forgery ? { bare: true, ...(req.copy?.serialHex ? { serialHex: mangleSerial(req.copy.serialHex) } : {}) } : {}),
    });
    const leaf: Leaf = { certPem: pem, der, chainPem: pem + issuer.chain, keyPem: key.pem };
    this.issued++;
    this.leaves.set(cacheKey, leaf);
    return leaf;
  }

  /**
   * Makes ready, off the event loop, what `leaf(req)` would otherwise generate synchronously:
   * a forging authority's key for the host (RSA with e=3, up to 2048 bits: tens of ms to
   * seconds, a stall for every other flow). Callers on a flow's path await it first.
   */
  async prepare(req: LeafRequest): Promise<void> {
    const spec = this.authority(req.ca ?? "lab").spec;
    const forgery = (req.validity ?? "valid") === "valid" && req.copy?.notBefore && req.copy.notAfter ? spec.forgery : undefined;
    if (!forgery || this.leaves.get(this.leafKeyOf(req))) return;
    const at = req.at ?? Date.now();
    const bits = bitsAt(forgery, at);
    const id = `${(req.names[0] ?? "chokepoint").slice(0, 64)}|${bits}`;
    if (this.hostKeys.get(id)) return;
    const privateKey = await new Promise<KeyObject>((resolve, reject) =>
      generateKeyPair("rsa", { modulusLength: bits, publicExponent: forgery.hostKey.exponent }, (err, _pub, key) => (err ? reject(err) : resolve(key))));
    if (!this.hostKeys.get(id)) this.hostKeys.set(id, { pem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(), key: privateKey, publicPem: publicPemOf(privateKey) });
  }

  /** A key of its own for a host (forging authorities), bounded like the leaves. */
  private hostKey(id: string, bits: number, exponent: number): { pem: string; key: KeyObject; publicPem: string } {
    let k = this.hostKeys.get(id);
    if (!k) {
      k = newRsaKey(bits, exponent);
      this.hostKeys.set(id, k);
    }
    return k;
  }

  /** A TLS context presenting the leaf for `req` (cached). */
  context(req: LeafRequest): SecureContext {
    const key = this.leafKeyOf(req);
    const hit = this.contexts.get(key);
    if (hit) return hit;
    const leaf = this.leaf(req);
    const ctx = createSecureContext({ key: leaf.keyPem, cert: leaf.chainPem });
    this.contexts.set(key, ctx);
    return ctx;
  }

  /** The authority's certificate in an installable format (mitmproxy's conventions: PEM, DER .cer, PKCS#12 without key). */
  export(id: string, format: "pem" | "der" | "p12"): Buffer {
    const ca = this.authority(id);
    if (format === "pem") return Buffer.from(ca.certPem);
    if (format === "der") return ca.certDer;
    const p12 = forge.pkcs12.toPkcs12Asn1(null, [forge.pki.certificateFromPem(ca.certPem)], "", { algorithm: "3des", friendlyName: ca.spec.subject.CN });
    return Buffer.from(forge.asn1.toDer(p12).getBytes(), "binary");
  }
}

/** The validity shift (hours) of a forgery at lab time `at`. */
function shiftAt(f: NonNullable<AuthoritySpec["forgery"]>, at: number): number {
  return f.shiftHours.filter((s) => !s.from || Date.parse(s.from) <= at).at(-1)?.hours ?? 0;
}

/** The host key size of a forgery at lab time `at`. */
function bitsAt(f: NonNullable<AuthoritySpec["forgery"]>, at: number): number {
  return f.hostKey.bits.filter((b) => !b.from || Date.parse(b.from) <= at).at(-1)?.bits ?? 2048;
}

/** The server's serial with its last 4 bytes changed (the 2019 box; the blog says 4 bytes, IMC 33 bits). */
function mangleSerial(hex: string): string {
  const h = hex.length % 2 ? `0${hex}` : hex;
  if (h.length <= 8) return h;
  let tail = randomBytes(4).toString("hex");
  while (tail === h.slice(-8)) tail = randomBytes(4).toString("hex");
  return h.slice(0, -8) + tail;
}

function newRsaKey(bits = 2048, exponent = 65537): { pem: string; key: KeyObject; publicPem: string } {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: bits, publicExponent: exponent });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  return { pem, key: privateKey, publicPem: publicPemOf(privateKey) };
}

/**
 * Writes through a temporary file and a hard link (which, unlike a rename, never replaces an
 * existing file), so a concurrent reader never sees half a key. False when the file existed.
 */
function writeExclusive(file: string, text: string, mode: number): boolean {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  try {
    linkSync(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

function waitFor(file: string): void {
  const until = Date.now() + 5000;
  while (!existsSync(file)) {
    if (Date.now() > until) throw new Error(`${file} is missing; remove the half-made CA files in ${file.replace(/\/[^/]*$/, "")} and retry`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
}
