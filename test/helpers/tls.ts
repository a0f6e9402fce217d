import { createServer, connect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";

/** The ClientHello Node's TLS client sends for `servername` (captured on a local socket). */
export function captureClientHello(servername: string, opts: { alpn?: string[] } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = createServer((s) => {
      s.once("data", (d) => { resolve(d); s.destroy(); server.close(); });
    });
    // (A helper that hangs would show as a bare test timeout: say which step did not finish.)
    const timer = setTimeout(() => { server.close(); reject(new Error(`captureClientHello(${servername}): no ClientHello within 10 s`)); }, 10_000);
    server.once("close", () => clearTimeout(timer));
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      const c = tlsConnect({ port, host: "127.0.0.1", servername, ...(opts.alpn ? { ALPNProtocols: opts.alpn } : {}) });
      c.on("error", () => undefined);
    });
    server.on("error", reject);
  });
}

export { buildClientHello } from "../../src/conformance/flows.js";

/** Opens a SOCKS5 tunnel to host:port (optionally with a username = network); resolves with the socket once established, or the reply code. */
export function socks(proxyPort: number, host: string, port: number, user?: string): Promise<{ socket: Socket; code: number }> {
  return new Promise((resolve, reject) => {
    const s = connect(proxyPort, "127.0.0.1");
    let stage = 0;
    let buf = Buffer.alloc(0);
    let done = false;
    const fail = (why: string): void => { if (!done) { done = true; s.destroy(); reject(new Error(`socks(${host}:${port}): ${why} (stage ${stage}, ${buf.length} bytes buffered)`)); } };
    const timer = setTimeout(() => fail("no SOCKS reply within 10 s"), 10_000);
    s.on("error", (e) => fail(e.message));
    s.on("close", () => fail("the proxy closed the connection before its reply"));
    s.on("connect", () => s.write(Buffer.from(user ? [5, 1, 2] : [5, 1, 0])));
    const request = (): void => {
      const h = Buffer.from(host, "latin1");
      s.write(Buffer.concat([Buffer.from([5, 1, 0, 3, h.length]), h, Buffer.from([port >> 8, port & 0xff])]));
      stage = 2;
    };
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (stage === 0 && buf.length >= 2) {
        buf = buf.subarray(2);
        if (user) {
          const u = Buffer.from(user);
          s.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([1, 0x78])]));
          stage = 1;
        } else request();
      }
      if (stage === 1 && buf.length >= 2) {
        const ok = buf[1] === 0;
        buf = buf.subarray(2);
        if (!ok) { done = true; clearTimeout(timer); s.off("data", onData); resolve({ socket: s, code: -1 }); return; }
        request();
      }
      if (stage === 2 && buf.length >= 10) {
        done = true;
        clearTimeout(timer);
        s.off("data", onData);
        resolve({ socket: s, code: buf[1]! });
      }
    };
    s.on("data", onData);
  });
}

/** Collects what the socket receives until it closes or `ms` pass; says how it ended. */
export function outcome(s: Socket, ms: number): Promise<{ data: Buffer; ended: "reset" | "closed" | "timeout" }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let reset = false;
    s.on("data", (d) => chunks.push(d));
    s.on("error", (e: NodeJS.ErrnoException) => { if (e.code === "ECONNRESET") reset = true; });
    const timer = setTimeout(() => { s.destroy(); resolve({ data: Buffer.concat(chunks), ended: "timeout" }); }, ms);
    s.on("close", () => { clearTimeout(timer); resolve({ data: Buffer.concat(chunks), ended: reset ? "reset" : "closed" }); });
  });
}
