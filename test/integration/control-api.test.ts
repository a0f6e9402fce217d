// The control API as a probe author's test would use it: one whole scenario through HTTP
// only (status, the event stream, seek, activating a profile, a try, reset), its errors,
// the token, and the CLI verbs on top of it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/index.js";
import { BIN } from "../helpers/cli.js";
import { run } from "../helpers/tools.js";

/** Reads Server-Sent Events from the API until `until` says stop (or `ms` pass). */
async function sse(url: string, until: (events: Record<string, unknown>[]) => boolean, ms = 10_000): Promise<Record<string, unknown>[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const events: Record<string, unknown>[] = [];
  try {
    const res = await fetch(url, { signal: ac.signal });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    let buf = "";
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += Buffer.from(chunk).toString("utf8");
      for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (/^event: decision$/m.test(block) && data) events.push(JSON.parse(data) as Record<string, unknown>);
      }
      if (until(events)) break;
    }
  } catch (err) {
    if ((err as Error).name !== "AbortError") throw err;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return events;
}

describe("control API", () => {
  let lab: Lab;
  let base: string;
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, { method, headers: { "content-type": "application/json", ...headers }, ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}) });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };

  beforeAll(async () => {
    lab = await startLab({ profiles: ["example-basics"], at: "2014-02-13T16:00:00+06:00" });
    base = `http://${lab.endpoints.control!.host}:${lab.endpoints.control!.port}`;
  });
  afterAll(async () => { await lab?.stop(); });

  it("drives a whole scenario: status, seek, activate, the event stream, try, reset", async () => {
    // Start: one profile, pinned.
    const s0 = await call("GET", "/v1/status");
    expect(s0.status).toBe(200);
    expect(s0.body.profiles.map((p: { id: string }) => p.id)).toEqual(["example-basics"]);
    expect(s0.body.clock).toMatchObject({ mode: "pinned", paused: true });
    // Activate the Almaty day and seek into the outage.
    const act = await call("POST", "/v1/profiles", { activate: "kz-2014-02-13-almaty-messaging" });
    expect(act.status).toBe(200);
    expect(act.body.active.map((p: { id: string }) => p.id)).toEqual(["example-basics", "kz-2014-02-13-almaty-messaging"]);
    const seek = await call("POST", "/v1/clock", { seek: "2014-02-13T17:30:00+06:00" });
    expect(seek.body).toMatchObject({ ok: true, labTime: "2014-02-13T11:30:00.000Z", paused: true });
    // Read the relay's decisions over SSE while a message is tried on a mobile network.
    const streamed = sse(`${base}/v1/events?component=relay&network=kcell-almaty-mobile`, (es) => es.some((e) => e.action === "reject"));
    await new Promise((r) => setTimeout(r, 200));
    const tried = await call("POST", "/v1/try", { service: "sms", network: "kcell-almaty-mobile" });
    expect(tried.body).toMatchObject({ ok: true, observed: "service-unavailable", detail: "rejected: message centre unavailable" });
    const events = await streamed;
    expect(events.every((e) => e.component === "relay" && e.network === "kcell-almaty-mobile")).toBe(true);
    expect(events.find((e) => e.action === "reject")).toMatchObject({ rule: "sms-outage", profile: "kz-2014-02-13-almaty-messaging", seed: "kz-2014-02-13-almaty-messaging" });
    // After the outage the message goes through; the counters show both.
    await call("POST", "/v1/clock", { seek: "2014-02-13T18:45:00+06:00" });
    expect((await call("POST", "/v1/try", { service: "sms", network: "kcell-almaty-mobile" })).body.observed).toBe("false");
    const s1 = await call("GET", "/v1/status");
    expect(s1.body.counters.reject["kcell-almaty-mobile"]).toBeGreaterThanOrEqual(1);
    expect(s1.body.counters.allow["kcell-almaty-mobile"]).toBeGreaterThanOrEqual(1);
    // Speed and pause.
    expect((await call("POST", "/v1/clock", { speed: 60, pause: false })).body).toMatchObject({ speed: 60, paused: false });
    expect((await call("POST", "/v1/clock", { pause: true })).body.paused).toBe(true);
    // The story: the seed's sources and the outage's window on the timeline.
    const story = await call("GET", "/v1/profiles");
    expect(story.body.seeds.find((s: { id: string }) => s.id === "kz-2014-02-13-almaty-messaging").sources.length).toBeGreaterThan(0);
    expect(story.body.timeline.segments.some((g: { start: string; rules: string[] }) => g.start === "2014-02-13T11:00:00.000Z" && g.rules.includes("kz-2014-02-13-almaty-messaging/sms-outage"))).toBe(true);
    // Deactivate, then reset clears the counters.
    expect((await call("POST", "/v1/profiles", { deactivate: "kz-2014-02-13-almaty-messaging" })).body.active).toHaveLength(1);
    expect((await call("POST", "/v1/reset")).body.ok).toBe(true);
    const s2 = await call("GET", "/v1/status");
    expect(s2.body.total).toBe(0);
    expect(s2.body.counters).toEqual({});
  });

  it("says what is wrong with a request, and keeps serving", async () => {
    expect(await call("POST", "/v1/clock", "{not json")).toMatchObject({ status: 400, body: { ok: false, error: expect.stringMatching(/not JSON/) } });
    expect((await call("POST", "/v1/clock", { seek: "yesterday" })).body.error).toMatch(/ISO instant/);
    expect((await call("POST", "/v1/clock", { speed: -1 })).body.error).toMatch(/above 0/);
    expect((await call("POST", "/v1/clock", {})).status).toBe(400);
    expect((await call("POST", "/v1/profiles", { activate: "no-such-regime" })).body.error).toMatch(/no-such-regime/);
    expect((await call("POST", "/v1/profiles", { deactivate: "kz-2012-tor-dpi" })).body.error).toMatch(/not active/);
    expect((await call("POST", "/v1/try", { url: "ftp://x" })).status).toBe(400);
    expect((await call("POST", "/v1/try", { dns: "spoof.example.org", network: "mars" })).body.error).toMatch(/no network "mars"/);
    expect((await call("GET", "/v1/nothing")).status).toBe(404);
    expect((await call("DELETE", "/v1/status")).status).toBe(405);
    expect((await call("POST", "/v1/clock", "x".repeat(70_000))).status).toBe(413);
    const doc = await call("GET", "/v1/openapi.json");
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(["/v1/status", "/v1/events", "/v1/clock", "/v1/profiles", "/v1/reset"]));
    expect((await call("GET", "/v1/status")).status).toBe(200);
  });

  it("serves the live view (no external resources)", async () => {
    const page = await (await fetch(`${base}/`)).text();
    expect(page).toContain("<title>chokepoint: live view</title>");
    expect(page).not.toMatch(/(src|href)=["']https?:/);
    expect((await fetch(`${base}/app.js`)).headers.get("content-type")).toContain("javascript");
  });

  it("the CLI verbs use it: status, clock seek/speed/pause/resume", async () => {
    const args = ["--control", base];
    const seek = await run(process.execPath, [BIN, "clock", "seek", "2014-02-13T17:30:00+06:00", ...args]);
    expect(seek.stdout).toContain("lab time 2014-02-13T11:30:00.000Z (paused)");
    expect((await run(process.execPath, [BIN, "clock", "speed", "120", ...args])).code).toBe(0);
    expect((await run(process.execPath, [BIN, "clock", "resume", ...args])).stdout).toContain("running, x120");
    expect((await run(process.execPath, [BIN, "clock", "pause", ...args])).stdout).toContain("paused");
    const status = await run(process.execPath, [BIN, "status", ...args]);
    expect(status.stdout).toContain("example-basics");
    const json = JSON.parse((await run(process.execPath, [BIN, "status", "--json", ...args])).stdout) as { clock: { speed: number } };
    expect(json.clock.speed).toBe(120);
    const none = await run(process.execPath, [BIN, "status", "--control", "http://127.0.0.1:9"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no lab answers at http:\/\/127\.0\.0\.1:9/);
    expect((await run(process.execPath, [BIN, "clock", "speed", "fast", ...args])).stderr).toMatch(/positive number/);
  });

  it("with a token, every request needs it", async () => {
    const locked = await startLab({ profiles: ["example-basics"], controlToken: "s3cret" });
    try {
      const url = `http://${locked.endpoints.control!.host}:${locked.endpoints.control!.port}/v1/status`;
      expect((await fetch(url)).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: "Bearer s3cret" } })).status).toBe(200);
      expect((await fetch(`${url}?token=s3cret`)).status).toBe(200);
    } finally {
      await locked.stop();
    }
  });
});
