// Classification of a flow's first bytes into an observation for the policy: HTTP request,
// TLS ClientHello (with JA3/JA4), and named fingerprints:
//   tor-2012         Tor's link-handshake ClientHello (see TOR_CIPHER_PREFIX below)
//   tor-sni          the random server name Tor clients send: www.<4-25 base32>.com|.net,
//                    a label that reads as random, and no ALPN (see isTorSni)
//   openvpn          OpenVPN over TCP: length-prefixed P_CONTROL_HARD_RESET_CLIENT
//   ssh              an SSH identification string
//   fully-encrypted  random-looking bytes by the exemption rules of Wu et al. (USENIX
//                    Security 2023) for the GFW's detection of Shadowsocks/VMess
import { looksLikeTls, parseClientHello, type ClientHello } from "./clienthello.js";

export interface HttpRequestHead { method: string; target: string; version: string; host?: string; path: string; headerEnd: number }

export type Classified =
  | { kind: "http"; http: HttpRequestHead; fingerprints: string[] }
  | { kind: "tls"; hello: ClientHello; fingerprints: string[] }
  | { kind: "other"; protocol: string; fingerprints: string[] }
  /** Need more bytes to decide (a partial ClientHello or request head). */
  | { kind: "partial"; need: number };

/**
 * Tor's client cipher list (src/common/ciphers.inc, used for the v2 link handshake from
 * Tor 0.2.3.x on; it copies Firefox 8's list). Its opening and the NSS-only suite 0xfeff
 * (SSL_RSA_FIPS_WITH_3DES_EDE_CBC_SHA) together are distinctive: browsers of 2012 that sent
 * this prefix sent SNI and other extensions, and no current browser offers 0xfeff.
 * The Kazakh box keyed on "ClientHello and ServerHello fingerprints" (Tor Metrics); which
 * fields exactly is not documented, so this is an emulation (confidence S), not a copy.
 */
export const TOR_CIPHER_PREFIX = [0xc00a, 0xc014, 0x0039, 0x0038, 0xc00f, 0xc005, 0x0035];
export const TOR_MARKER_CIPHER = 0xfeff;

/**
 * Tor's random names: the client's SNI is crypto_random_hostname(4, 25, "www.", ".com"), its
 * certificates' (8, 20, ..., ".net"); base32: letters and digits 2-7.
 */
export const TOR_SNI = /^www\.([a-z2-7]{4,25})\.(?:com|net)$/;

/**
 * Whether a label reads as random base32 rather than as words: a digit 2-7, a run of five
 * consonants, or (8 letters and more) fewer than one vowel in five. Measured: 94% of random
 * 4-25 character base32 labels (all of those of 14 and more), and none of 150 popular
 * site names (google, facebook, youtube, twitter, pinterest, wordpress, tumblr, ...).
 */
export function looksRandomLabel(label: string): boolean {
  if (/[2-7]/.test(label)) return true;
  const vowels = label.match(/[aeiouy]/g)?.length ?? 0;
  const run = Math.max(0, ...(label.match(/[^aeiouy]+/g) ?? []).map((r) => r.length));
  return run >= 5 || (label.length >= 8 && vowels / label.length < 0.2);
}

/**
 * The TLS 1.2 part of a present-day tor client's cipher list, in its order (captured in the
 * lab from Tor 0.4.9.11 with OpenSSL 3: 13 01, 13 03, 13 02, then these). No browser, curl
 * or openssl s_client offers it: it tells tor's short random names (www.bing.com's shape)
 * from real ones where the label alone cannot.
 */
export const TOR_CIPHERS_NOW = [0xc02b, 0xc02f, 0xcca9, 0xcca8, 0xc02c, 0xc030, 0xc00a, 0xc009, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035];

function hasTorCiphersNow(h: ClientHello): boolean {
  const cs = h.ciphers.filter((c) => c >> 8 !== 0x13 && (c & 0x0f0f) !== 0x0a0a);
  return TOR_CIPHERS_NOW.every((c, i) => cs[i] === c);
}

/**
 * Tor's random server name in the ClientHello it comes with: the name's shape and no ALPN
 * (tor's TLS offers none; every browser and curl does), with a label that reads as random or,
 * where it does not (about 6% of tor's names: 4 to 7 letters and no digit), tor's own cipher
 * list. So www.google.com and the like never match, whatever client asks for them, and every
 * connection of a tor client does (a box that missed one in sixteen would let tor through).
 */
export function isTorSni(h: ClientHello): boolean {
  const m = h.sni === undefined ? null : TOR_SNI.exec(h.sni);
  return !!m && h.alpn.length === 0 && (looksRandomLabel(m[1]!) || hasTorCiphersNow(h));
}

export function isTor2012(h: ClientHello): boolean {
  if (!h.ciphers.includes(TOR_MARKER_CIPHER)) return false;
  const cs = h.ciphers.filter((c) => (c & 0x0f0f) !== 0x0a0a);
  return TOR_CIPHER_PREFIX.every((c, i) => cs[i] === c);
}

const METHODS = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE|PROPFIND|PROPPATCH|MKCOL|COPY|MOVE|LOCK|UNLOCK) /;
const MAX_HEAD = 64 * 1024;

export function parseHttpHead(buf: Buffer): HttpRequestHead | "partial" | undefined {
  const start = buf.toString("latin1", 0, Math.min(buf.length, 12));
  if (!METHODS.test(start)) {
    if (buf.length < 8 && /^[A-Z]+$/.test(start)) return "partial";
    return undefined;
  }
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return buf.length > MAX_HEAD ? undefined : "partial";
  const lines = buf.toString("latin1", 0, end).split("\r\n");
  const [method, target, version] = lines[0]!.split(" ") as [string, string | undefined, string | undefined];
  if (!target || !version?.startsWith("HTTP/")) return undefined;
  let host: string | undefined;
  for (const l of lines.slice(1)) {
    const c = l.indexOf(":");
    if (c > 0 && l.slice(0, c).trim().toLowerCase() === "host") { host = l.slice(c + 1).trim(); break; }
  }
  let path = target;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    try {
      const u = new URL(target);
      host ??= u.host;
      path = `${u.pathname}${u.search}`;
    } catch {
      return undefined;
    }
  }
  return { method, target, version, ...(host !== undefined ? { host } : {}), path, headerEnd: end + 4 };
}

function isOpenVpn(b: Buffer): boolean {
  if (b.length < 3) return false;
  const len = b.readUInt16BE(0);
  const opcode = b[2]! >> 3, keyId = b[2]! & 7;
  return keyId === 0 && (opcode === 7 || opcode === 10 || opcode === 1) && len >= 14 && len <= 1600;
}

const printable = (c: number): boolean => c >= 0x20 && c <= 0x7e;

/** Wu et al. 2023, §4: traffic is exempted from "fully encrypted" if any rule holds. */
export function looksFullyEncrypted(b: Buffer): boolean {
  if (b.length < 6) return false;
  let bits = 0, printableCount = 0, run = 0, maxRun = 0;
  for (const c of b) {
    let x = c; while (x) { bits += x & 1; x >>= 1; }
    if (printable(c)) { printableCount++; run++; maxRun = Math.max(maxRun, run); } else run = 0;
  }
  const popcount = bits / b.length;
  if (popcount <= 3.4 || popcount >= 4.6) return false;                 // Ex1: entropy of bits
  if ([...b.subarray(0, 6)].every(printable)) return false;              // Ex2: first six printable
  if (printableCount / b.length > 0.5) return false;                     // Ex3: mostly printable
  if (maxRun > 20) return false;                                         // Ex4: a long printable run
  if (looksLikeTls(b) || METHODS.test(b.toString("latin1", 0, 12))) return false; // Ex5: TLS or HTTP
  return true;
}

/** Classifies what a client sent first. `final`: no more bytes will come (judge what is there). */
export function classify(buf: Buffer, final = false): Classified {
  // Too short to tell a TLS record header (5 bytes) from anything else: a reassembling DPI
  // waits for more (a ClientHello whose first segment is 1-2 bytes must not slip through).
  if (!final && buf.length < 5 && (buf.length === 0 || (buf[0] === 0x16 && (buf.length < 2 || buf[1] === 0x03)))) return { kind: "partial", need: 5 - buf.length };
  if (looksLikeTls(buf)) {
    const r = parseClientHello(buf);
    if ("hello" in r) {
      const fps = ["tls", `ja3:${r.hello.ja3Hash}`, `ja4:${r.hello.ja4}`];
      if (isTor2012(r.hello)) fps.unshift("tor-2012");
      if (isTorSni(r.hello)) fps.unshift("tor-sni");
      return { kind: "tls", hello: r.hello, fingerprints: fps };
    }
    if ("needMore" in r && !final) return { kind: "partial", need: r.needMore };
    return { kind: "other", protocol: "tls", fingerprints: ["tls"] };
  }
  const http = parseHttpHead(buf);
  if (http === "partial" && !final) return { kind: "partial", need: 1 };
  if (http && http !== "partial") return { kind: "http", http, fingerprints: ["http"] };
  if (/^SSH-(2\.0|1\.99)-/.test(buf.toString("latin1", 0, 9))) return { kind: "other", protocol: "ssh", fingerprints: ["ssh"] };
  if (isOpenVpn(buf)) return { kind: "other", protocol: "openvpn", fingerprints: ["openvpn"] };
  if (looksFullyEncrypted(buf)) return { kind: "other", protocol: "encrypted", fingerprints: ["fully-encrypted"] };
  return { kind: "other", protocol: "unknown", fingerprints: [] };
}
