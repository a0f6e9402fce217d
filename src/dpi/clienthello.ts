// TLS ClientHello parsing and fingerprints (JA3, JA4). A ClientHello larger than one TCP
// segment (post-quantum key shares make them ~1.7 KB) is parsed once all its records are in;
// `needMore` says how many bytes are still missing.
import { createHash } from "node:crypto";

export interface ClientHello {
  recordVersion: number;
  version: number;
  /** Highest version in supported_versions (or the legacy version). */
  maxVersion: number;
  ciphers: number[];
  extensions: number[];
  sni?: string;
  alpn: string[];
  groups: number[];
  pointFormats: number[];
  sigAlgs: number[];
  ja3: string;
  ja3Hash: string;
  ja4: string;
}

export type HelloResult = { hello: ClientHello } | { needMore: number } | { invalid: string };

const isGrease = (v: number): boolean => (v & 0x0f0f) === 0x0a0a && (v >> 8) === (v & 0xff);
const MAX_HELLO = 64 * 1024;

/** Looks at the start of a client's byte stream: does it begin with a TLS handshake record? */
export function looksLikeTls(buf: Uint8Array): boolean {
  return buf.length >= 3 && buf[0] === 0x16 && buf[1] === 0x03 && buf[2]! <= 0x04;
}

/** Reassembles the handshake message from (possibly several) TLS records, then parses it. */
export function parseClientHello(buf: Buffer): HelloResult {
  if (!looksLikeTls(buf)) return { invalid: "not a TLS handshake record" };
  const parts: Buffer[] = [];
  let off = 0;
  let have = 0;
  let need = -1;
  while (off + 5 <= buf.length) {
    if (buf[off] !== 0x16) return { invalid: "handshake interrupted by another record type" };
    const len = buf.readUInt16BE(off + 3);
    if (len === 0 || len > 16384 + 2048) return { invalid: "bad record length" };
    if (off + 5 + len > buf.length) return { needMore: off + 5 + len - buf.length };
    parts.push(buf.subarray(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    if (need < 0 && have >= 4) {
      const hs = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      if (hs[0] !== 1) return { invalid: "first handshake message is not a ClientHello" };
      need = 4 + hs.readUIntBE(1, 3);
      if (need > MAX_HELLO) return { invalid: "ClientHello too large" };
    }
    if (need >= 0 && have >= need) break;
  }
  if (need < 0 || have < need) return { needMore: Math.max(1, need < 0 ? 5 : need - have) };
  const hs = Buffer.concat(parts).subarray(0, need);
  try {
    return { hello: parseBody(hs.subarray(4), buf.readUInt16BE(1)) };
  } catch (err) {
    return { invalid: (err as Error).message };
  }
}

function parseBody(b: Buffer, recordVersion: number): ClientHello {
  let p = 0;
  const need = (n: number): void => { if (p + n > b.length) throw new Error("truncated ClientHello"); };
  need(2 + 32 + 1);
  const version = b.readUInt16BE(p); p += 2 + 32;
  const sidLen = b[p]!; p += 1; need(sidLen + 2); p += sidLen;
  const csLen = b.readUInt16BE(p); p += 2; need(csLen);
  if (csLen % 2) throw new Error("odd cipher suites length");
  const ciphers: number[] = [];
  for (let i = 0; i < csLen; i += 2) ciphers.push(b.readUInt16BE(p + i));
  p += csLen;
  need(1); const cmLen = b[p]!; p += 1; need(cmLen); p += cmLen;
  const hello: ClientHello = { recordVersion, version, maxVersion: version, ciphers, extensions: [], alpn: [], groups: [], pointFormats: [], sigAlgs: [], ja3: "", ja3Hash: "", ja4: "" };
  if (p + 2 <= b.length) {
    const extLen = b.readUInt16BE(p); p += 2; need(extLen);
    const end = p + extLen;
    while (p + 4 <= end) {
      const type = b.readUInt16BE(p), len = b.readUInt16BE(p + 2);
      p += 4;
      if (p + len > end) throw new Error("extension runs past the end");
      const e = b.subarray(p, p + len);
      hello.extensions.push(type);
      if (type === 0 && e.length >= 5) {
        // server_name: list length, then entries (type 0 = host_name)
        let q = 2;
        while (q + 3 <= e.length) {
          const nt = e[q]!, nl = e.readUInt16BE(q + 1);
          if (q + 3 + nl > e.length) throw new Error("bad server_name");
          if (nt === 0 && hello.sni === undefined) hello.sni = e.toString("latin1", q + 3, q + 3 + nl);
          q += 3 + nl;
        }
      } else if (type === 16 && e.length >= 2) {
        let q = 2;
        while (q < e.length) { const l = e[q]!; hello.alpn.push(e.toString("latin1", q + 1, q + 1 + l)); q += 1 + l; }
      } else if (type === 10 && e.length >= 2) {
        for (let q = 2; q + 1 < e.length; q += 2) hello.groups.push(e.readUInt16BE(q));
      } else if (type === 11 && e.length >= 1) {
        for (let q = 1; q < e.length; q++) hello.pointFormats.push(e[q]!);
      } else if (type === 13 && e.length >= 2) {
        for (let q = 2; q + 1 < e.length; q += 2) hello.sigAlgs.push(e.readUInt16BE(q));
      } else if (type === 43 && e.length >= 1) {
        for (let q = 1; q + 1 < e.length; q += 2) {
          const v = e.readUInt16BE(q);
          if (!isGrease(v) && v > hello.maxVersion) hello.maxVersion = v;
        }
      }
      p += len;
    }
  }
  fingerprint(hello);
  return hello;
}

/** JA3 (Salesforce) and JA4 (FoxIO) of a parsed ClientHello. */
function fingerprint(h: ClientHello): void {
  const noGrease = (xs: number[]): number[] => xs.filter((x) => !isGrease(x));
  const ciphers = noGrease(h.ciphers), exts = noGrease(h.extensions);
  h.ja3 = [h.version, ciphers.join("-"), exts.join("-"), noGrease(h.groups).join("-"), h.pointFormats.join("-")].join(",");
  h.ja3Hash = createHash("md5").update(h.ja3).digest("hex");
  const ver = ({ 0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3" } as Record<number, string>)[h.maxVersion] ?? "00";
  const alpn = h.alpn[0] ? `${h.alpn[0][0]}${h.alpn[0][h.alpn[0].length - 1]}` : "00";
  const two = (n: number): string => String(Math.min(n, 99)).padStart(2, "0");
  const hex = (n: number): string => n.toString(16).padStart(4, "0");
  const sha12 = (s: string): string => (s ? createHash("sha256").update(s).digest("hex").slice(0, 12) : "000000000000");
  const cipherPart = sha12([...ciphers].sort((a, b) => a - b).map(hex).join(","));
  const extSorted = exts.filter((e) => e !== 0 && e !== 16).sort((a, b) => a - b).map(hex).join(",");
  const sig = noGrease(h.sigAlgs).map(hex).join(",");
  const extPart = sha12(sig ? `${extSorted}_${sig}` : extSorted);
  h.ja4 = `t${ver}${h.sni !== undefined ? "d" : "i"}${two(ciphers.length)}${two(exts.length)}${alpn}_${cipherPart}_${extPart}`;
}
