// The DNS wire format, as much as a censoring resolver needs: parse a query strictly
// (header, one question, an optional EDNS OPT record), and encode responses with name
// compression and an OPT record when the query had one (RFC 1035, RFC 6891).
//
// Why our own codec: the resolver's hot path is "parse one question, answer from a table",
// and the codecs measured here (dns2 2.4: ~10k queries/s, dns-packet: ~40k) spend most of
// their time building objects we do not need. This one parses into a few numbers and a
// string and writes responses with one allocation. docs/ARCHITECTURE.md has the figures.

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, SVCB: 64, HTTPS: 65, ANY: 255 } as const;
const TYPE_NAME = new Map<number, string>(Object.entries(TYPE).map(([k, v]) => [v, k]));
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const;

export function typeName(t: number): string {
  return TYPE_NAME.get(t) ?? `TYPE${t}`;
}

export interface Query {
  id: number;
  opcode: number;
  rd: boolean;
  cd: boolean;
  /** Question name as sent (case preserved), without the trailing dot; "" for the root. */
  name: string;
  labels: string[];
  qtype: number;
  qclass: number;
  /** EDNS: the client's UDP payload size, version and DO bit; undefined without OPT. */
  edns?: { udpSize: number; version: number; do: boolean };
  /** The question section as received (name uncompressed), copied verbatim into replies. */
  question?: Buffer;
}

export type ParseResult =
  | { ok: true; query: Query }
  /** Answerable with an error: the header parsed (id known), the rest did not. */
  | { ok: false; rcode: number; id: number; opcode: number; rd: boolean; reason: string; query?: Query }
  /** Not answerable at all (too short, or itself a response): drop. */
  | { ok: false; drop: true; reason: string };

const MAX_NAME = 255;

/** Reads a name at `off`; follows compression pointers (each must point backwards, so no loops). */
function readName(buf: Buffer, off: number): { labels: string[]; name: string; next: number; compressed: boolean } | string {
  const labels: string[] = [];
  let text = "";
  let length = 1;
  let next = -1;
  let pos = off;
  for (let hops = 0; hops < 128; hops++) {
    if (pos >= buf.length) return "name runs past the end";
    const len = buf[pos]!;
    if (len === 0) return { labels, name: text, next: next < 0 ? pos + 1 : next, compressed: next >= 0 };
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length) return "truncated pointer";
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      if (target >= pos) return "compression pointer does not point backwards";
      if (next < 0) next = pos + 2;
      pos = target;
      continue;
    }
    if ((len & 0xc0) !== 0) return "reserved label type";
    if (pos + 1 + len > buf.length) return "label runs past the end";
    length += len + 1;
    if (length > MAX_NAME) return "name longer than 255 octets";
    const label = buf.toString("latin1", pos + 1, pos + 1 + len);
    labels.push(label);
    text = text ? `${text}.${label}` : label;
    pos += 1 + len;
  }
  return "too many compression pointers";
}

/** Skips a resource record at `off`; returns the offset after it, or an error. */
function skipRecord(buf: Buffer, off: number): { type: number; cls: number; ttl: number; rdlen: number; rdata: number; next: number } | string {
  const n = readName(buf, off);
  if (typeof n === "string") return n;
  const p = n.next;
  if (p + 10 > buf.length) return "record header runs past the end";
  const rdlen = buf.readUInt16BE(p + 8);
  if (p + 10 + rdlen > buf.length) return "record data runs past the end";
  return { type: buf.readUInt16BE(p), cls: buf.readUInt16BE(p + 2), ttl: buf.readUInt32BE(p + 4), rdlen, rdata: p + 10, next: p + 10 + rdlen };
}

export function parseQuery(buf: Buffer): ParseResult {
  if (buf.length < 12) return { ok: false, drop: true, reason: "shorter than a DNS header" };
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  if (flags & 0x8000) return { ok: false, drop: true, reason: "a response, not a query" };
  const opcode = (flags >> 11) & 0xf;
  const rd = (flags & 0x0100) !== 0;
  const fail = (rcode: number, reason: string, query?: Query): ParseResult => ({ ok: false, rcode, id, opcode, rd, reason, ...(query ? { query } : {}) });
  const qd = buf.readUInt16BE(4), an = buf.readUInt16BE(6), ns = buf.readUInt16BE(8), ar = buf.readUInt16BE(10);
  if (opcode !== 0) return fail(RCODE.NOTIMP, `opcode ${opcode} not implemented`);
  if (qd !== 1) return fail(RCODE.FORMERR, `${qd} questions (a query has exactly one)`);
  const name = readName(buf, 12);
  if (typeof name === "string") return fail(RCODE.FORMERR, name);
  if (name.next + 4 > buf.length) return fail(RCODE.FORMERR, "question runs past the end");
  const query: Query = {
    id, opcode, rd, cd: (flags & 0x0010) !== 0,
    name: name.name, labels: name.labels,
    qtype: buf.readUInt16BE(name.next), qclass: buf.readUInt16BE(name.next + 2),
  };
  // Without compression (as in every real query) the question's bytes can be copied as they are.
  if (name.compressed === false) query.question = buf.subarray(12, name.next + 4);
  let off = name.next + 4;
  for (let i = 0; i < an + ns; i++) {
    const r = skipRecord(buf, off);
    if (typeof r === "string") return fail(RCODE.FORMERR, r);
    off = r.next;
  }
  for (let i = 0; i < ar; i++) {
    const r = skipRecord(buf, off);
    if (typeof r === "string") return fail(RCODE.FORMERR, r);
    if (r.type === TYPE.OPT) {
      if (query.edns) return fail(RCODE.FORMERR, "more than one OPT record");
      query.edns = { udpSize: Math.max(512, r.cls), version: (r.ttl >>> 16) & 0xff, do: (r.ttl & 0x8000) !== 0 };
    }
    off = r.next;
  }
  if (query.edns && query.edns.version > 0) return fail(RCODE.BADVERS, `EDNS version ${query.edns.version}`, query);
  return { ok: true, query };
}

export interface Answer { type: "A" | "AAAA"; address: string; ttl: number }

export interface ResponseSpec {
  rcode: number;
  answers?: readonly Answer[] | undefined;
  /** Set the TC bit and leave the answers out (forces a retry over TCP). */
  truncate?: boolean | undefined;
}

/** Our advertised UDP payload size (the DNS flag day 2020 value). */
export const OUR_UDP_SIZE = 1232;

function encodeName(labels: string[], out: Buffer, off: number): number {
  for (const l of labels) {
    out[off++] = l.length;
    off += out.write(l, off, "latin1");
  }
  out[off++] = 0;
  return off;
}

const addressBytes = new Map<string, Buffer>();

/** An address in wire form (cached: the world and spoof lists repeat the same few). */
function wireAddress(type: "A" | "AAAA", address: string): Buffer {
  let b = addressBytes.get(address);
  if (!b) {
    b = Buffer.alloc(type === "A" ? 4 : 16);
    if (type === "A") ipv4Bytes(address, b, 0);
    else ipv6Bytes(address, b, 0);
    if (addressBytes.size > 100_000) addressBytes.clear();
    addressBytes.set(address, b);
  }
  return b;
}

function ipv4Bytes(a: string, out: Buffer, off: number): void {
  const p = a.split(".");
  for (let i = 0; i < 4; i++) out[off + i] = Number(p[i]);
}

function ipv6Bytes(a: string, out: Buffer, off: number): void {
  let text = a;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const p = v4[1]!.split(".").map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  for (let i = 0; i < 8; i++) out.writeUInt16BE(parseInt(groups[i] || "0", 16), off + i * 2);
}

/**
 * Encodes a response to `q` (or, with `q` absent, a header-only error reply to `id`).
 * `maxSize`: the UDP limit; a response that would not fit is sent truncated (TC=1).
 */
export function encodeResponse(q: Query | { id: number; opcode: number; rd: boolean; cd?: boolean; labels?: undefined; edns?: Query["edns"] }, spec: ResponseSpec, maxSize = 65535): Buffer {
  const hasQuestion = q.labels !== undefined;
  let answers = spec.truncate ? [] : (spec.answers ?? []);
  const questionLen = !hasQuestion ? 0 : (q as Query).question?.length ?? (q as Query).labels.reduce((n, l) => n + l.length + 1, 1) + 4;
  const edns = q.edns;
  let size = 12 + questionLen + (edns ? 11 : 0);
  for (const a of answers) size += 12 + (a.type === "A" ? 4 : 16);
  let truncate = !!spec.truncate;
  if (size > maxSize) {
    truncate = true;
    answers = [];
    size = 12 + questionLen + (edns ? 11 : 0);
  }
  const out = Buffer.allocUnsafe(size);
  out.writeUInt16BE(q.id, 0);
  const rcode = spec.rcode & 0xf;
  const flags = 0x8000 | ((q.opcode & 0xf) << 11) | (truncate ? 0x0200 : 0) | (q.rd ? 0x0100 : 0) | 0x0080 | (q.cd ? 0x0010 : 0) | rcode;
  out.writeUInt16BE(flags, 2);
  out.writeUInt16BE(hasQuestion ? 1 : 0, 4);
  out.writeUInt16BE(answers.length, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(edns ? 1 : 0, 10);
  let off = 12;
  if (hasQuestion) {
    const query = q as Query;
    if (query.question) off += query.question.copy(out, off);
    else {
      off = encodeName(query.labels, out, off);
      out.writeUInt16BE(query.qtype, off);
      out.writeUInt16BE(query.qclass, off + 2);
      off += 4;
    }
  }
  for (const a of answers) {
    out.writeUInt16BE(0xc00c, off); // pointer to the question's name
    out.writeUInt16BE(a.type === "A" ? TYPE.A : TYPE.AAAA, off + 2);
    out.writeUInt16BE(1, off + 4);
    out.writeUInt32BE(a.ttl >>> 0, off + 6);
    const len = a.type === "A" ? 4 : 16;
    out.writeUInt16BE(len, off + 10);
    wireAddress(a.type, a.address).copy(out, off + 12);
    off += 12 + len;
  }
  if (edns) {
    out[off] = 0; // root name
    out.writeUInt16BE(TYPE.OPT, off + 1);
    out.writeUInt16BE(OUR_UDP_SIZE, off + 3);
    const extRcode = (spec.rcode >> 4) & 0xff;
    out.writeUInt32BE(((extRcode << 24) | (edns.do ? 0x8000 : 0)) >>> 0, off + 5);
    out.writeUInt16BE(0, off + 9);
  }
  return out;
}

/** A recursive A query for `name` (the lab's own probes ask with it). */
export function encodeQuery(id: number, name: string, qtype: number = TYPE.A): Buffer {
  const labels = name.replace(/\.$/, "").split(".").filter(Boolean);
  const out = Buffer.alloc(12 + labels.reduce((n, l) => n + l.length + 1, 1) + 4);
  out.writeUInt16BE(id, 0);
  out.writeUInt16BE(0x0100, 2); // RD
  out.writeUInt16BE(1, 4);
  const off = encodeName(labels, out, 12);
  out.writeUInt16BE(qtype, off);
  out.writeUInt16BE(1, off + 2);
  return out;
}

/** The response code and A (or AAAA) addresses of a reply (answers after a single question). */
export function replyAddresses(m: Buffer, qtype: number = TYPE.A): { rcode: number; addresses: string[] } {
  const out: string[] = [];
  const q = readName(m, 12);
  if (m.length < 12 || typeof q === "string") return { rcode: m.length >= 4 ? m[3]! & 0xf : RCODE.FORMERR, addresses: out };
  let off = q.next + 4;
  for (let i = 0; i < m.readUInt16BE(6); i++) {
    const r = skipRecord(m, off);
    if (typeof r === "string") break;
    if (qtype === TYPE.A && r.type === TYPE.A && r.rdlen === 4) out.push([...m.subarray(r.rdata, r.rdata + 4)].join("."));
    if (qtype === TYPE.AAAA && r.type === TYPE.AAAA && r.rdlen === 16) {
      const g = Array.from({ length: 8 }, (_, i) => m.readUInt16BE(r.rdata + i * 2).toString(16));
      out.push(new URL(`http://[${g.join(":")}]/`).hostname.slice(1, -1));
    }
    off = r.next;
  }
  return { rcode: m[3]! & 0xf, addresses: out };
}
