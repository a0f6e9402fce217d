// --world internet: allowed queries go to real upstream resolvers, byte for byte (only the
// ID is rewritten), so that EDNS options, DO and CD reach them as the client sent them.
import { createSocket, type Socket } from "node:dgram";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { RCODE, TYPE, encodeQuery, replyAddresses } from "../dns/wire.js";

const TIMEOUT_MS = 3000;

export function systemResolvers(): string[] {
  try {
    return readFileSync("/etc/resolv.conf", "utf8").split("\n")
      .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
      .filter((a): a is string => !!a && !!isIP(a) && !a.startsWith("127."));
  } catch {
    return [];
  }
}

export class Forwarder {
  private readonly socket: Socket;
  private readonly pending = new Map<number, { resolve: (b: Buffer | null) => void; id: number; timer: NodeJS.Timeout }>();
  private nextId = Math.floor(Math.random() * 65536);
  private readonly upstream: { host: string; port: number };

  constructor(upstream: string) {
    const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(upstream);
    if (!m || !isIP(m[1]!)) throw new Error(`upstream resolver must be an address (optionally :port), got "${upstream}"`);
    this.upstream = { host: m[1]!, port: Number(m[2] ?? 53) };
    this.socket = createSocket(isIP(m[1]!) === 6 ? "udp6" : "udp4");
    this.socket.on("message", (msg) => this.onReply(msg));
    this.socket.on("error", () => undefined);
    this.socket.unref();
  }

  forward(query: Buffer): Promise<Buffer | null> {
    if (query.length < 12) return Promise.resolve(null);
    let id = this.nextId++ & 0xffff;
    for (let i = 0; this.pending.has(id) && i < 65536; i++) id = this.nextId++ & 0xffff;
    const out = Buffer.from(query);
    const clientId = out.readUInt16BE(0);
    out.writeUInt16BE(id, 0);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(null);
      }, TIMEOUT_MS);
      this.pending.set(id, { resolve, id: clientId, timer });
      this.socket.send(out, this.upstream.port, this.upstream.host);
    });
  }

  /** --world internet: the first address the upstream resolver gives for `name` (A, then AAAA), for the proxies. */
  async lookup(name: string): Promise<string | undefined> {
    for (const qtype of [TYPE.A, TYPE.AAAA]) {
      const reply = await this.forward(encodeQuery(0, name, qtype));
      if (!reply) continue;
      const r = replyAddresses(reply, qtype);
      if (r.rcode === RCODE.NXDOMAIN) return undefined;
      if (r.addresses[0]) return r.addresses[0];
    }
    return undefined;
  }

  private onReply(msg: Buffer): void {
    if (msg.length < 12) return;
    const p = this.pending.get(msg.readUInt16BE(0));
    if (!p) return;
    this.pending.delete(msg.readUInt16BE(0));
    clearTimeout(p.timer);
    const reply = Buffer.from(msg);
    reply.writeUInt16BE(p.id, 0);
    p.resolve(reply);
  }

  close(): void {
    for (const p of this.pending.values()) { clearTimeout(p.timer); p.resolve(null); }
    this.pending.clear();
    this.socket.close();
  }
}
