// Addresses as the lab compares them. A destination or a peer can be written many ways
// (::ffff:127.0.0.1, ::ffff:7f00:1, 0:0:0:0:0:0:0:1, [::1], 127.000.000.001 is not one):
// every check parses it once into bytes and compares canonical forms, so that no spelling
// passes a guard that another spelling would not.
import { isIP } from "node:net";

/** The 4 or 16 bytes of an address (IPv4-mapped IPv6 becomes its 4 IPv4 bytes); undefined when it is not one. */
export function addressBytes(text: string): Uint8Array | undefined {
  let t = text.trim();
  if (t.startsWith("[") && t.endsWith("]")) t = t.slice(1, -1);
  t = t.split("%")[0]!; // a zone id names an interface, not another address
  const family = isIP(t);
  if (family === 4) return Uint8Array.from(t.split(".").map(Number));
  if (family !== 6) return undefined;
  let s = t.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  const tailV4 = v4 ? v4[1]!.split(".").map(Number) : undefined;
  if (v4) s = s.slice(0, -v4[1]!.length) + "0:0";
  const [head, tail] = s.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const tl = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - tl.length).fill("0"), ...tl];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => { const n = parseInt(g || "0", 16); out[i * 2] = n >> 8; out[i * 2 + 1] = n & 0xff; });
  if (tailV4) out.set(tailV4, 12);
  // ::ffff:a.b.c.d is an IPv4 address on a dual-stack socket.
  if (out.subarray(0, 10).every((b) => b === 0) && out[10] === 0xff && out[11] === 0xff) return out.slice(12);
  return out;
}

/** The canonical text of an address (IPv4 dotted; IPv6 compressed, lower-case; IPv4-mapped as IPv4), or undefined. */
export function canonicalAddress(text: string): string | undefined {
  const b = addressBytes(text);
  if (!b) return undefined;
  if (b.length === 4) return [...b].join(".");
  const groups = Array.from({ length: 8 }, (_, i) => (b[i * 2]! << 8) | b[i * 2 + 1]!);
  // The longest run of two or more zero groups becomes "::" (RFC 5952).
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** A peer address as Node reports it on a dual-stack socket, without the IPv4-mapped prefix. */
export function unmap(ip: string | undefined): string {
  const t = ip ?? "";
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(t) ? t.slice(7) : t;
}

/** "ip:port" of a socket's remote end (the form events use for clients). */
export function peerOf(s: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string {
  return `${unmap(s.remoteAddress)}:${s.remotePort ?? 0}`;
}

export type AddressKind = "loopback" | "unspecified" | "private" | "link-local" | "multicast" | "broadcast" | "reserved" | "lab" | "public";

const inV4 = (b: Uint8Array, net: number[], len: number): boolean => {
  for (let i = 0, left = len; left > 0; i++, left -= 8) {
    const mask = left >= 8 ? 0xff : (0xff << (8 - left)) & 0xff;
    if ((b[i]! & mask) !== (net[i]! & mask)) return false;
  }
  return true;
};

/**
 * What kind of address this is, for guards: the lab's own ranges (198.18.0.0/15, 2001:db8::/32)
 * are "lab"; loopback, unspecified, private (RFC 1918, CGNAT, ULA), link-local (cloud metadata
 * included), multicast, broadcast and other special ranges are never a way out.
 */
export function addressKind(text: string): AddressKind | undefined {
  const b = addressBytes(text);
  if (!b) return undefined;
  if (b.length === 4) {
    const tests: [number[], number, AddressKind][] = [
      [[127, 0, 0, 0], 8, "loopback"], [[0, 0, 0, 0], 8, "unspecified"],
      [[10, 0, 0, 0], 8, "private"], [[172, 16, 0, 0], 12, "private"], [[192, 168, 0, 0], 16, "private"], [[100, 64, 0, 0], 10, "private"],
      [[169, 254, 0, 0], 16, "link-local"], [[224, 0, 0, 0], 4, "multicast"], [[255, 255, 255, 255], 32, "broadcast"],
      [[198, 18, 0, 0], 15, "lab"], [[192, 0, 0, 0], 24, "reserved"], [[192, 0, 2, 0], 24, "reserved"], [[198, 51, 100, 0], 24, "reserved"],
      [[203, 0, 113, 0], 24, "reserved"], [[240, 0, 0, 0], 4, "reserved"],
    ];
    return tests.find(([net, len]) => inV4(b, net, len))?.[2] ?? "public";
  }
  if (b.every((x, i) => x === (i === 15 ? 1 : 0))) return "loopback";
  if (b.every((x) => x === 0)) return "unspecified";
  const tests: [number[], number, AddressKind][] = [
    [[0xfc, 0], 7, "private"], [[0xfe, 0x80], 10, "link-local"], [[0xff, 0], 8, "multicast"],
    [[0x20, 0x01, 0x0d, 0xb8], 32, "lab"], [[0x00, 0x64, 0xff, 0x9b], 32, "reserved"], [[0x20, 0x02], 16, "reserved"], [[0x20, 0x01, 0, 0], 32, "reserved"],
  ];
  return tests.find(([net, len]) => inV4(b, net, len))?.[2] ?? "public";
}

export function isLoopback(text: string | undefined): boolean {
  return text !== undefined && addressKind(text) === "loopback";
}
