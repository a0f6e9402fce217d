// IPv4 + TCP packets as the box sees them on the wire: parsed without trusting any field
// (a bad checksum, an odd TTL and odd flags are facts to report, not errors), and RSTs built
// for injection. The box judges what it parses; the kernel forwards the bytes untouched.

export interface TcpPacket {
  src: string; dst: string; sport: number; dport: number;
  ttl: number; ipId: number;
  seq: number; ack: number;
  flags: { syn: boolean; ack: boolean; rst: boolean; fin: boolean; psh: boolean };
  window: number;
  /** Whether the TCP checksum (over the pseudo-header) is right. */
  checksumOk: boolean;
  payload: Buffer;
  /** The options a handshake negotiates (parsed on SYNs only: what taking over a connection needs). */
  options?: TcpOptions;
}

/** What a SYN or SYN/ACK offers (RFC 9293, 7323, 2018). */
export interface TcpOptions { mss?: number; wscale?: number; sackOk?: boolean; ts?: { val: number; ecr: number } }

/** The options of a TCP header (from byte 20 to the data offset); malformed lists end where they break. */
function parseOptions(t: Buffer, doff: number): TcpOptions {
  const o: TcpOptions = {};
  for (let i = 20; i < doff;) {
    const kind = t[i]!;
    if (kind === 0) break;
    if (kind === 1) { i++; continue; }
    const len = t[i + 1] ?? 0;
    if (len < 2 || i + len > doff) break;
    if (kind === 2 && len === 4) o.mss = t.readUInt16BE(i + 2);
    else if (kind === 3 && len === 3) o.wscale = t[i + 2]!;
    else if (kind === 4 && len === 2) o.sackOk = true;
    else if (kind === 8 && len === 10) o.ts = { val: t.readUInt32BE(i + 2), ecr: t.readUInt32BE(i + 6) };
    i += len;
  }
  return o;
}

const ip4 = (b: Buffer, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

/** An IPv4/TCP packet, or undefined for anything else (other protocols, IPv6, fragments, truncation). */
export function parseTcp4(b: Buffer): TcpPacket | undefined {
  if (b.length < 40 || b[0]! >> 4 !== 4 || b[9] !== 6) return undefined;
  const ihl = (b[0]! & 0x0f) * 4;
  const total = Math.min(b.readUInt16BE(2), b.length);
  if ((b.readUInt16BE(6) & 0x3fff) !== 0) return undefined; // a fragment: judged by the kernel's reassembly, not here
  if (ihl < 20 || total < ihl + 20) return undefined;
  const t = b.subarray(ihl, total);
  const doff = (t[12]! >> 4) * 4;
  if (doff < 20 || doff > t.length) return undefined;
  const f = t[13]!;
  return {
    src: ip4(b, 12), dst: ip4(b, 16), sport: t.readUInt16BE(0), dport: t.readUInt16BE(2),
    ttl: b[8]!, ipId: b.readUInt16BE(4),
    seq: t.readUInt32BE(4), ack: t.readUInt32BE(8),
    flags: { fin: !!(f & 1), syn: !!(f & 2), rst: !!(f & 4), psh: !!(f & 8), ack: !!(f & 16) },
    window: t.readUInt16BE(14),
    checksumOk: tcpChecksum(b.subarray(12, 20), t) === 0,
    payload: Buffer.from(t.subarray(doff)),
    ...(f & 2 ? { options: parseOptions(t, doff) } : {}),
  };
}

/** The ones' complement sum over the pseudo-header and segment (0 when the checksum in it is right). */
function tcpChecksum(addrs: Buffer, seg: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 8; i += 2) sum += addrs.readUInt16BE(i);
  sum += 6 + seg.length;
  for (let i = 0; i + 1 < seg.length; i += 2) sum += seg.readUInt16BE(i);
  if (seg.length & 1) sum += seg[seg.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function ipChecksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += h.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** A TCP segment in an IPv4 packet, checksums right (for injection: RSTs, and tests' packets). */
export function buildTcp4(p: { src: string; dst: string; sport: number; dport: number; seq: number; ack: number; flags: Partial<TcpPacket["flags"]>; ttl?: number; ipId?: number; window?: number; payload?: Buffer; badChecksum?: boolean }): Buffer {
  const payload = p.payload ?? Buffer.alloc(0);
  const b = Buffer.alloc(40 + payload.length);
  b[0] = 0x45;
  b.writeUInt16BE(b.length, 2);
  b.writeUInt16BE(p.ipId ?? 0, 4);
  b.writeUInt16BE(0x4000, 6); // DF
  b[8] = p.ttl ?? 64;
  b[9] = 6;
  p.src.split(".").forEach((o, i) => (b[12 + i] = Number(o)));
  p.dst.split(".").forEach((o, i) => (b[16 + i] = Number(o)));
  b.writeUInt16BE(ipChecksum(b.subarray(0, 20)), 10);
  const t = b.subarray(20);
  t.writeUInt16BE(p.sport, 0);
  t.writeUInt16BE(p.dport, 2);
  t.writeUInt32BE(p.seq >>> 0, 4);
  t.writeUInt32BE(p.ack >>> 0, 8);
  t[12] = 5 << 4;
  const f = p.flags;
  t[13] = (f.fin ? 1 : 0) | (f.syn ? 2 : 0) | (f.rst ? 4 : 0) | (f.psh ? 8 : 0) | (f.ack ? 16 : 0);
  t.writeUInt16BE(p.window ?? 65535, 14);
  payload.copy(t, 20);
  const sum = tcpChecksum(b.subarray(12, 20), t);
  t.writeUInt16BE(p.badChecksum ? (sum ^ 0x5a5a) & 0xffff : sum, 16);
  return b;
}
