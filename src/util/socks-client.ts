// A SOCKS5 client (RFC 1928, with RFC 1929 username/password): how the lab's own tools (the
// relay client, the conformance probes) reach the world through the censor, as a client on
// a network would (username = network).
import { connect, type Socket } from "node:net";

export class SocksError extends Error {}

/** A TCP connection to host:port through a SOCKS5 proxy (username = network), paused; rejects on refusal or after `timeoutMs`. */
export async function connectThroughSocks(proxy: { host: string; port: number; username?: string }, host: string, port: number, timeoutMs = 10_000, localPort?: number): Promise<Socket> {
  const socket = connect({ port: proxy.port, host: proxy.host, ...(localPort ? { localPort } : {}) });
  socket.on("error", () => undefined);
  try {
    await withTimeout(new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", (e) => reject(new SocksError(`cannot reach the SOCKS proxy at ${proxy.host}:${proxy.port}: ${e.message}`)));
    }), timeoutMs, () => socket.destroy(), `no connection to the SOCKS proxy within ${timeoutMs / 1000} s`);
    await withTimeout(socksConnect(socket, host, port, proxy.username), timeoutMs, () => socket.destroy(), `the SOCKS proxy did not open ${host}:${port} within ${timeoutMs / 1000} s`);
    return socket;
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => { onTimeout(); reject(new SocksError(message)); }, ms); }),
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
  const onClose = (): void => want?.reject(new SocksError("the SOCKS proxy closed the connection"));
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
      if (auth[1] !== 0) throw new SocksError(`the SOCKS proxy refused the username "${username}" (not a network of the lab?)`);
    } else if (hello[1] !== 0) throw new SocksError("the SOCKS proxy accepts no method we offer");
    const name = Buffer.from(host);
    s.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])]));
    const head = await read(4);
    if (head[1] !== 0) throw new SocksError(`the SOCKS proxy could not open ${host}:${port} (reply ${head[1]}: ${head[1] === 5 ? "connection refused" : "failure"})`);
    await read(head[3] === 1 ? 6 : head[3] === 4 ? 18 : (await read(1))[0]! + 2);
  } finally {
    s.off("data", onData);
    s.off("close", onClose);
    s.pause();
    if (pending.length) s.unshift(pending);
  }
}
