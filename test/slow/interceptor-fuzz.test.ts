// The transparent entry (intercept(socket, originalDestination, network)), fed 100,000 random
// and mutated first-byte sequences over real TCP connections; then a normal request.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, createServer, type Server } from "node:net";
import { startLab, type Lab } from "../../src/index.js";
import { captureClientHello } from "../helpers/tls.js";

let lab: Lab;
let server: Server;
let port: number;

beforeAll(async () => {
  lab = await startLab({ profiles: ["example-basics"] });
  const dst = { host: "fuzz.example", ip: lab.world.addresses("fuzz.example").v4[0]!, port: 443 };
  server = createServer((s) => void lab.interceptor.intercept(s, dst, "default", { entry: "transparent" }));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => { server.close(); await lab.stop(); });

describe("interceptor fuzz", () => {
  it("takes 100,000 random and mutated first-byte sequences, then serves a normal TLS request", async () => {
    const seeds = [await captureClientHello("fuzz.example"), Buffer.from("GET / HTTP/1.1\r\nHost: page.example.org\r\n\r\n"), Buffer.from("SSH-2.0-x\r\n")];
    let seed = 1234;
    const rand = (): number => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const TOTAL = 100_000, PARALLEL = 64;
    let sent = 0;
    const one = (): Promise<void> => new Promise((resolve) => {
      let b: Buffer;
      if (sent % 2) {
        b = Buffer.alloc(1 + Math.floor(rand() * 400));
        for (let j = 0; j < b.length; j++) b[j] = Math.floor(rand() * 256);
      } else {
        b = Buffer.from(seeds[sent % seeds.length]!);
        for (let f = 0; f < 1 + Math.floor(rand() * 6); f++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
        if (rand() < 0.3) b = b.subarray(0, 1 + Math.floor(rand() * (b.length - 1)));
      }
      sent++;
      const s = connect(port, "127.0.0.1", () => { s.write(b); s.destroy(); });
      s.on("error", () => undefined);
      s.on("close", () => resolve());
    });
    const workers = Array.from({ length: PARALLEL }, async () => { while (sent < TOTAL) await one(); });
    await Promise.all(workers);
    expect(sent).toBeGreaterThanOrEqual(TOTAL);
    await new Promise((r) => setTimeout(r, 1500));
    expect(lab.interceptor.stats.flows).toBeGreaterThanOrEqual(TOTAL);
    // A normal request on the same entry still gets the world's answer.
    const reply = await new Promise<Buffer>(async (resolve) => {
      const hello = await captureClientHello("after.example");
      const s = connect(port, "127.0.0.1", () => s.write(hello));
      s.once("data", (d) => { resolve(d); s.destroy(); });
      s.on("error", () => resolve(Buffer.alloc(0)));
    });
    expect(reply[0]).toBe(0x16); // a ServerHello
  }, 180_000);
});
