// A reference client of the relay's protocol (the CLI's `msg` verbs, tests, users' scripts).
// It reaches the relay directly, or, like a phone on a censored network, through the lab's
// SOCKS5 proxy to a messaging endpoint of the world (e.g. c.whatsapp.net:5222), so that the
// censor sees the connection first.
import { EventEmitter } from "node:events";
import { connect, type Socket } from "node:net";
import type { RelayFrame, Service } from "./protocol.js";

export interface RelayClientOptions {
  host: string;
  port: number;
  /** Go through this SOCKS5 proxy (username = network) to host:port instead of connecting directly. */
  socks?: { host: string; port: number; username?: string };
  /** Give up connecting after this long (default 10 s). */
  timeoutMs?: number;
}

export class RelayError extends Error {
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

/** A TCP connection to host:port through a SOCKS5 proxy (username = network), paused; rejects on refusal or after `timeoutMs`. */
export async function connectThroughSocks(proxy: { host: string; port: number; username?: string }, host: string, port: number, timeoutMs = 10_000): Promise<Socket> {
  const socket = connect(proxy.port, proxy.host);
  socket.on("error", () => undefined);
  try {
    await withTimeout(new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", (e) => reject(new RelayError(`cannot reach the SOCKS proxy at ${proxy.host}:${proxy.port}: ${e.message}`)));
    }), timeoutMs, () => socket.destroy(), `no connection to the SOCKS proxy within ${timeoutMs / 1000} s`);
    await withTimeout(socksConnect(socket, host, port, proxy.username), timeoutMs, () => socket.destroy(), `the SOCKS proxy did not open ${host}:${port} within ${timeoutMs / 1000} s`);
    return socket;
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => { onTimeout(); reject(new RelayError(message)); }, ms); }),
  ]);
}

/** SOCKS5 CONNECT (RFC 1928), with username/password (RFC 1929) when a username is given. */
async function socksConnect(s: Socket, host: string, port: number, username?: string): Promise<void> {
  // One buffer for the whole handshake; what follows it is handed back to the socket, paused.
  let pending = Buffer.alloc(0);
  let want: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  const check = (): void => {
    if (want && pending.length >= want.n) {
      const w = want;
      want = undefined;
      const out = pending.subarray(0, w.n);
      pending = pending.subarray(w.n);
      w.resolve(out);
    }
  };
  const onData = (d: Buffer): void => { pending = Buffer.concat([pending, d]); check(); };
  const onClose = (): void => want?.reject(new RelayError("the SOCKS proxy closed the connection"));
  s.on("data", onData);
  s.on("close", onClose);
  const read = (n: number): Promise<Buffer> => new Promise((resolve, reject) => { want = { n, resolve, reject }; check(); });
  try {
    s.write(Buffer.from(username ? [5, 1, 2] : [5, 1, 0]));
    const hello = await read(2);
    if (hello[1] === 2 && username) {
      const u = Buffer.from(username);
      s.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([0])]));
      const auth = await read(2);
      if (auth[1] !== 0) throw new RelayError(`the SOCKS proxy refused the username "${username}" (not a network of the lab?)`);
    } else if (hello[1] !== 0) throw new RelayError("the SOCKS proxy accepts no method we offer");
    const name = Buffer.from(host);
    s.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])]));
    const head = await read(4);
    if (head[1] !== 0) throw new RelayError(`the SOCKS proxy could not open ${host}:${port} (reply ${head[1]}: ${head[1] === 5 ? "connection refused" : "failure"})`);
    await read(head[3] === 1 ? 6 : head[3] === 4 ? 18 : (await read(1))[0]! + 2);
  } finally {
    s.off("data", onData);
    s.off("close", onClose);
    s.pause();
    if (pending.length) s.unshift(pending);
  }
}
