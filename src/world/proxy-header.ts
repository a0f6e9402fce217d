// PROXY protocol v1 ("PROXY TCP4 src dst sport dport\r\n"): how the lab's own parts tell
// the world's origin which address and port a client originally asked for, over one
// loopback listener. Only the lab sends it; the origin accepts it from loopback only.

export interface ProxyHeader { src: string; dst: string; srcPort: number; dstPort: number }

// Our one addition: a seventh field, the origin's secret, so that a local process cannot
// forge a destination (and with it, a way around the censor) by writing a PROXY line.

const MAX = 107 + 33; // the v1 line's maximum length, CRLF included, and our token

/** Parses a v1 header at the start of `buf`. undefined: not a header; "more": need more bytes. */
export function parseProxyHeader(buf: Buffer): { header: ProxyHeader; length: number; token?: string } | "more" | "invalid" | undefined {
  if (buf.length < 6) return "PROXY ".startsWith(buf.toString("latin1")) ? "more" : undefined;
  if (buf.toString("latin1", 0, 6) !== "PROXY ") return undefined;
  const end = buf.indexOf("\r\n");
  if (end < 0) return buf.length >= MAX ? "invalid" : "more";
  const parts = buf.toString("latin1", 0, end).split(" ");
  if ((parts.length !== 6 && parts.length !== 7) || (parts[1] !== "TCP4" && parts[1] !== "TCP6")) return "invalid";
  const srcPort = Number(parts[4]), dstPort = Number(parts[5]);
  if (!Number.isInteger(srcPort) || !Number.isInteger(dstPort) || dstPort < 0 || dstPort > 65535) return "invalid";
  return { header: { src: parts[2]!, dst: parts[3]!, srcPort, dstPort }, length: end + 2, ...(parts[6] ? { token: parts[6] } : {}) };
}

export function formatProxyHeader(h: ProxyHeader, token?: string): string {
  const fam = h.dst.includes(":") || h.src.includes(":") ? "TCP6" : "TCP4";
  return `PROXY ${fam} ${h.src} ${h.dst} ${h.srcPort} ${h.dstPort}${token ? ` ${token}` : ""}\r\n`;
}
