// A reference client of the relay's protocol (the CLI's `msg` verbs, tests, users' scripts).
// It reaches the relay directly, or, like a phone on a censored network, through the lab's
// SOCKS5 proxy to a messaging endpoint of the world (e.g. c.whatsapp.net:5222), so that the
// censor sees the connection first.
import { EventEmitter } from "node:events";
import { connect, type Socket } from "node:net";
import type { RelayFrame, Service } from "./protocol.js";
import { SocksError, connectThroughSocks, withTimeout } from "../util/socks-client.js";

export { connectThroughSocks };

export interface RelayClientOptions {
  host: string;
  port: number;
  /** Go through this SOCKS5 proxy (username = network) to host:port instead of connecting directly. */
  socks?: { host: string; port: number; username?: string };
  /** Give up connecting after this long (default 10 s). */
  timeoutMs?: number;
}

export class RelayError extends SocksError {
  constructor(message: string, readonly frame?: RelayFrame) {
    super(message);
  }
}

export class RelayClient extends EventEmitter {
  private buf = "";
  private seq = 0;

  private constructor(private readonly socket: Socket) {
    super();
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.buf += chunk;
      for (let nl = this.buf.indexOf("\n"); nl >= 0; nl = this.buf.indexOf("\n")) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        let f: RelayFrame;
        try {
          f = JSON.parse(line) as RelayFrame;
        } catch {
          continue;
        }
        this.emit("frame", f);
      }
    });
    socket.on("error", (err) => this.emit("transport-error", err));
    socket.on("close", () => this.emit("close"));
    socket.resume();
  }

  static async connect(opts: RelayClientOptions): Promise<RelayClient> {
    const timeout = opts.timeoutMs ?? 10_000;
    if (opts.socks) return new RelayClient(await connectThroughSocks(opts.socks, opts.host, opts.port, timeout));
    const socket = connect(opts.port, opts.host);
    socket.setNoDelay(true);
    await withTimeout(new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", (e) => reject(new RelayError(`cannot reach the relay at ${opts.host}:${opts.port}: ${e.message}`)));
    }), timeout, () => socket.destroy(), `no connection to the relay at ${opts.host}:${opts.port} within ${timeout / 1000} s`);
    return new RelayClient(socket);
  }

  write(frame: object): void {
    this.socket.write(`${JSON.stringify(frame)}\n`);
  }

  /** The next frame that satisfies `pred`, or null after `ms`. */
  next<T extends RelayFrame>(pred: (f: RelayFrame) => f is T, ms: number): Promise<T | null>;
  next(pred: (f: RelayFrame) => boolean, ms: number): Promise<RelayFrame | null>;
  next(pred: (f: RelayFrame) => boolean, ms: number): Promise<RelayFrame | null> {
    return new Promise((resolve) => {
      const done = (f: RelayFrame | null): void => {
        clearTimeout(timer);
        this.off("frame", onFrame);
        this.off("close", onClose);
        resolve(f);
      };
      const onFrame = (f: RelayFrame): void => { if (pred(f)) done(f); };
      const onClose = (): void => done(null);
      const timer = setTimeout(() => done(null), ms);
      this.on("frame", onFrame);
      this.once("close", onClose);
    });
  }

  async register(number: string, network?: string, ms = 5000): Promise<{ number: string; network: string }> {
    this.write({ type: "register", number, ...(network ? { network } : {}) });
    const f = await this.next((x) => x.type === "registered" || (x.type === "error" && x.id === undefined), ms);
    if (!f) throw new RelayError(`no answer to register within ${ms / 1000} s`);
    if (f.type === "error") throw new RelayError(f.message, f);
    return f as { number: string; network: string };
  }

  /** Sends a message; resolves with the relay's answer to it (ack or error), or null when it stays silent for `ms`. */
  async send(to: string, text: string, opts: { via?: Service; id?: string; ms?: number } = {}): Promise<{ id: string; answer: RelayFrame | null }> {
    const id = opts.id ?? `m${process.pid}-${++this.seq}`;
    this.write({ type: "send", id, to, text, ...(opts.via ? { via: opts.via } : {}) });
    const answer = await this.next((x) => (x.type === "ack" || x.type === "error") && x.id === id, opts.ms ?? 5000);
    return { id, answer };
  }

  close(): void {
    this.socket.end();
    this.socket.destroySoon();
  }
}

