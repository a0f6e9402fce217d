import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startLab } from "../../src/index.js";
import { tempDir } from "../helpers/profiles.js";
import { exited } from "../helpers/cli.js";

const BURST = fileURLToPath(new URL("../fixtures/burst.mjs", import.meta.url));

describe("event log", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`keeps every decision when the lab is stopped by ${signal} in the middle of a burst`, async () => {
      const dir = tempDir();
      const events = join(dir, "events.jsonl");
      const count = join(dir, "count");
      const child = spawn(process.execPath, [BURST, events, count], { stdio: ["ignore", "pipe", "inherit"] });
      await new Promise<void>((r) => child.stdout!.once("data", () => r()));
      await new Promise((r) => setTimeout(r, 400));
      child.kill(signal);
      expect(await exited(child)).toBe(0);
      const made = Number(readFileSync(count, "utf8"));
      const lines = readFileSync(events, "utf8").split("\n").filter(Boolean);
      expect(made).toBeGreaterThan(1000);
      expect(lines).toHaveLength(made);
      const last = JSON.parse(lines[lines.length - 1]!);
      expect(last).toMatchObject({ v: 1, component: "resolver", flow: `q${made - 1}` });
    });
  }

  it("records allowed and blocked decisions with the schema of DESIGN.md, and feeds subscribers", async () => {
    const dir = tempDir();
    const file = join(dir, "e.jsonl");
    const lab = await startLab({ profiles: ["example-basics"], events: file, at: "2024-01-01T12:00:00Z" });
    const seen: string[] = [];
    const reader = (async () => {
      for await (const e of lab.events) {
        seen.push(e.action);
        if (seen.length === 2) break;
      }
    })();
    lab.decide({ name: "nx.example.org", qtype: "A" }, { component: "resolver", client: "127.0.0.1:1" });
    lab.decide({ name: "fine.example.org", qtype: "A" }, { component: "resolver" });
    await reader;
    expect(seen).toEqual(["nxdomain", "allow"]);
    expect(lab.eventLog.counters).toEqual({ nxdomain: { default: 1 }, allow: { default: 1 } });
    await lab.stop();
    const [blocked, allowed] = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(blocked).toMatchObject({
      v: 1, labTime: "2024-01-01T12:00:00.000Z", component: "resolver", network: "default", client: "127.0.0.1:1",
      observation: { name: "nx.example.org", qtype: "A" }, action: "nxdomain", rule: "dns-nx", profile: "example-basics",
    });
    expect(typeof blocked.ts).toBe("string");
    expect(allowed).toMatchObject({ action: "allow", observation: { name: "fine.example.org" } });
    expect(allowed.rule).toBeUndefined();
  });

  it("ends async iterators when the lab stops", async () => {
    const lab = await startLab({ profiles: ["example-basics"] });
    const done = (async () => { for await (const _ of lab.events) void _; return "ended"; })();
    await lab.stop();
    expect(await done).toBe("ended");
  });
});
