import { describe, expect, it } from "vitest";
import { connect } from "node:net";
import { ResidualTable } from "../../src/interceptor/residual.js";
import { LoopError, Upstream } from "../../src/interceptor/upstream.js";
import { EgressPolicy } from "../../src/runtime/egress.js";
import { httpProxyServer, type EntryStats } from "../../src/interceptor/entries.js";
import { World } from "../../src/world/world.js";
import type { Verdict } from "../../src/policy/types.js";
import type { Interceptor } from "../../src/interceptor/interceptor.js";

const verdict = (renew: boolean, key: "3-tuple" | "4-tuple" = "3-tuple"): Verdict => ({ action: { type: "drop" }, rule: "r", profile: "p", residual: { ms: 120_000, key, renew } });

describe("residual table", () => {
  it("blocks the 3-tuple for its time, renewed by retries when asked", () => {
    const t = new ResidualTable();
    t.trigger(verdict(true), "10.0.0.1", 5000, "198.19.1.1", 443, 0);
    expect(t.check("10.0.0.1", 6000, "198.19.1.1", 443, 100_000)).toBeDefined(); // another client port: same 3-tuple
    expect(t.check("10.0.0.1", 6000, "198.19.1.1", 443, 200_000)).toBeDefined(); // renewed at 100 s
    expect(t.check("10.0.0.1", 6000, "198.19.1.1", 443, 320_001)).toBeUndefined();
    expect(t.check("10.0.0.2", 6000, "198.19.1.1", 443, 1)).toBeUndefined();
    const once = new ResidualTable();
    once.trigger(verdict(false), "10.0.0.1", 5000, "198.19.1.1", 443, 0);
    expect(once.check("10.0.0.1", 5000, "198.19.1.1", 443, 100_000)).toBeDefined();
    expect(once.check("10.0.0.1", 5000, "198.19.1.1", 443, 120_000)).toBeUndefined();
  });
  it("keys a 4-tuple on the client port too", () => {
    const t = new ResidualTable();
    t.trigger(verdict(false, "4-tuple"), "10.0.0.1", 5000, "198.19.1.1", 443, 0);
    expect(t.check("10.0.0.1", 5000, "198.19.1.1", 443, 1)).toBeDefined();
    expect(t.check("10.0.0.1", 5001, "198.19.1.1", 443, 1)).toBeUndefined();
  });
});

describe("upstream loop guard", () => {
  it("never connects the internet world to the lab's own host", () => {
    const u = new Upstream({ world: new World({ hosts: {}, nonexistent: [], certs: {} }, { mode: "internet" }), egress: new EgressPolicy({ own: () => [{ host: "127.0.0.1", port: 3128 }] }) });
    expect(() => u.connect({ ip: "127.0.0.1", port: 3128 }, { ip: "127.0.0.1", port: 1 })).toThrow(LoopError);
    expect(() => u.connect({ ip: "::1", port: 80 }, { ip: "127.0.0.1", port: 1 })).toThrow(LoopError);
    expect(() => u.httpTarget({ ip: "127.0.0.5", port: 80 })).toThrow(LoopError);
  });
});

describe("HTTP proxy entry", () => {
  it("closes slowloris clients that never finish their request head, and counts them", async () => {
    const stats: EntryStats = { connections: 0, badRequests: 0, authFailures: 0, headTimeouts: 0, refused: 0 };
    const fake = { intercept: async () => undefined } as unknown as Interceptor;
    const up = new Upstream({ world: new World({ hosts: {}, nonexistent: [], certs: {} }), egress: new EgressPolicy({ own: () => [] }) });
    const server = httpProxyServer(fake, up, { network: "default", networks: new Set(["default"]), headTimeoutMs: 300 }, stats);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    const closedAfter = await new Promise<number>((resolve) => {
      const t0 = Date.now();
      const s = connect(port, "127.0.0.1", () => s.write("GET http://x.example/ HTTP/1.1\r\nHost: x"));
      s.on("close", () => resolve(Date.now() - t0));
      s.on("error", () => undefined);
    });
    server.close();
    expect(closedAfter).toBeGreaterThanOrEqual(250);
    expect(stats.headTimeouts).toBe(1);
  });
});
