import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { connect } from "node:net";
import { join } from "node:path";
import { WebSocket } from "ws";
import { startLab, RelayClient, type Lab, type LabEvent, type RelayFrame } from "../../src/index.js";
import { whatsappCheck } from "../helpers/ooni-whatsapp.js";
import { writeFiles } from "../helpers/profiles.js";
import { run } from "../helpers/tools.js";

const PROFILE = "kz-2014-02-13-almaty-messaging";
const at = (local: string): number => Date.parse(`2014-02-13T${local}+06:00`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Collects every event of a lab while the test runs. */
function collect(lab: Lab): LabEvent[] {
  const out: LabEvent[] = [];
  void (async () => { for await (const e of lab.events) out.push(e); })();
  return out;
}

async function subscriber(lab: Lab, number: string, network: string): Promise<{ c: RelayClient; got: RelayFrame[] }> {
  const c = await RelayClient.connect(lab.endpoints.relay!);
  const got: RelayFrame[] = [];
  c.on("frame", (f: RelayFrame) => got.push(f));
  await c.register(number, network);
  return { c, got };
}

const messagesOf = (got: RelayFrame[]) => got.filter((f): f is Extract<RelayFrame, { type: "message" }> => f.type === "message");

/** Waits until `cond` holds (polling), or fails after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("13 February 2014, Almaty: the afternoon replayed", () => {
  for (const variant of [undefined, "queue"] as const) {
    it(`delivers before 17:00, fails during the outage, delivers after it (variant: ${variant ?? "default"})`, async () => {
      // 16:59:00 at 60x: the outage starts one real second in. The boring 88 minutes in the
      // middle are skipped with a seek to 18:29:30, and the clock runs across 18:30 by itself.
      const lab = await startLab({ profiles: [PROFILE], from: "2014-02-13T16:59:00+06:00", speed: 60, ports: "auto", ...(variant ? { variant } : {}) });
      const events = collect(lab);
      try {
        const a = await subscriber(lab, "+77010000001", "kcell-almaty-mobile");
        const b = await subscriber(lab, "+77770000002", "beeline-almaty-mobile");
        const c = await subscriber(lab, "+77272000003", "beeline-fixed");
        const vias = ["whatsapp", "viber", "sms"] as const;

        // Before 17:00: every service delivers, with receipts.
        expect(lab.clock.now()).toBeLessThan(at("17:00"));
        for (const via of vias) expect((await a.c.send("+77770000002", `before ${via}`, { via })).answer).toMatchObject({ type: "ack", status: "accepted" });
        await until(() => messagesOf(b.got).length === 3, 2000, "three messages before the outage");
        expect(messagesOf(b.got).map((m) => m.via).sort()).toEqual(["sms", "viber", "whatsapp"]);
        expect(lab.clock.now()).toBeLessThan(at("17:00"));
        await until(() => a.got.filter((f) => f.type === "receipt").length === 3, 2000, "receipts");

        // The clock runs into the outage.
        await until(() => lab.clock.now() >= at("17:00:05"), 5000, "17:00");
        const during = await Promise.all(vias.map((via) => a.c.send("+77770000002", `during ${via}`, { via, ms: 1000 })));
        const [wa, viber, sms] = during.map((d) => d.answer);
        // Messengers: accepted and never delivered (silent outage).
        expect(wa).toMatchObject({ type: "ack", status: "accepted" });
        expect(viber).toMatchObject({ type: "ack", status: "accepted" });
        // SMS: the message centre refuses, or (variant queue) holds it.
        if (variant === "queue") expect(sms).toMatchObject({ type: "ack", status: "queued" });
        else expect(sms).toMatchObject({ type: "error", code: "rejected", message: "message centre unavailable" });
        // The fixed-network subscriber is not in scope: its message is accepted, but the
        // recipient's network cannot receive it, so the service holds it.
        expect((await c.c.send("+77010000001", "from the fixed line", { via: "whatsapp" })).answer).toMatchObject({ type: "ack", status: "accepted" });
        await sleep(800);
        expect(messagesOf(b.got)).toHaveLength(3);
        expect(messagesOf(a.got)).toHaveLength(0);
        expect(lab.relay.stats.heldNow).toBe(variant === "queue" ? 2 : 1);

        // The fixed-network subscriber's web access is not affected; the mobile one's WhatsApp Web is.
        const socks = lab.endpoints.socks!;
        const ca = lab.pki.authority("lab").certFile;
        const web = (net: string, url: string) => run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", "--cacert", ca, "--proxy", `socks5h://${net}@${socks.host}:${socks.port}`, url]);
        expect((await web("beeline-fixed", "https://tengrinews.kz/")).stdout).toBe("200");
        expect((await web("beeline-fixed", "https://web.whatsapp.com/")).stdout).toBe("200");
        expect((await web("kcell-almaty-mobile", "https://web.whatsapp.com/")).code).not.toBe(0);
        expect((await web("kcell-almaty-mobile", "https://tengrinews.kz/")).stdout).toBe("200");

        // Skip to just before the end; the clock crosses 18:30 by itself.
        lab.clock.seek(at("18:29:30"));
        await until(() => lab.clock.now() >= at("18:30"), 3000, "18:30");
        // What was held is delivered: the fixed line's message, and (queue variant) the SMS.
        await until(() => messagesOf(a.got).length === 1, 3000, "the held message");
        expect(messagesOf(a.got)[0]).toMatchObject({ from: "+77272000003", text: "from the fixed line" });
        if (variant === "queue") await until(() => messagesOf(b.got).some((m) => m.text === "during sms"), 3000, "the queued SMS");
        // The swallowed messages never arrive.
        expect(messagesOf(b.got).some((m) => m.text === "during whatsapp" || m.text === "during viber")).toBe(false);

        // After: every service delivers again.
        for (const via of vias) expect((await a.c.send("+77770000002", `after ${via}`, { via })).answer).toMatchObject({ type: "ack", status: "accepted" });
        await until(() => messagesOf(b.got).filter((m) => m.text.startsWith("after")).length === 3, 2000, "messages after the outage");

        // Every message is an event (its submission; deliveries and holds are events too).
        const relayEvents = events.filter((e) => e.component === "relay");
        const submitted = new Set(relayEvents.filter((e) => e.observation?.leg === "submit").map((e) => e.flow));
        expect(submitted.size).toBe(lab.relay.stats.messages);
        expect(relayEvents.filter((e) => e.action === "outage" && e.rule === "messengers-outage").length).toBeGreaterThanOrEqual(2);
        const held = relayEvents.find((e) => e.detail?.status === "held");
        expect(held).toMatchObject({ network: "kcell-almaty-mobile", rule: "messengers-outage", seed: "kz-2014-02-13-almaty-messaging" });
        for (const s of [a, b, c]) s.c.close();
      } finally {
        await lab.stop();
      }
    }, 30_000);
  }
});

describe("an OONI-style WhatsApp check through the SOCKS5 proxy", () => {
  let lab: Lab;
  beforeAll(async () => { lab = await startLab({ profiles: [PROFILE], at: "2014-02-13T17:30:00+06:00", ports: "auto" }); });
  afterAll(async () => { await lab.stop(); });

  it("reports blocked inside the outage window and ok outside it (and on a fixed network)", async () => {
    const ca = lab.pki.authority("lab").certFile;
    const inside = await whatsappCheck(lab.endpoints.socks!, "kcell-almaty-mobile", ca);
    expect(inside).toEqual({
      whatsapp_endpoints_status: "blocked", whatsapp_endpoints_blocked: Array.from({ length: 16 }, (_, i) => `e${i + 1}.whatsapp.net`),
      registration_server_status: "blocked", whatsapp_web_status: "blocked",
    });
    const fixed = await whatsappCheck(lab.endpoints.socks!, "beeline-fixed", ca);
    expect(fixed).toEqual({ whatsapp_endpoints_status: "ok", whatsapp_endpoints_blocked: [], registration_server_status: "ok", whatsapp_web_status: "ok" });
    lab.clock.seek(at("16:30"));
    const before = await whatsappCheck(lab.endpoints.socks!, "kcell-almaty-mobile", ca);
    expect(before).toEqual({ whatsapp_endpoints_status: "ok", whatsapp_endpoints_blocked: [], registration_server_status: "ok", whatsapp_web_status: "ok" });
    // The censor's log says where each flow was judged: at the interceptor, by service.
    expect(lab.interceptor.stats.judgedAtConnect).toBeGreaterThanOrEqual(34);
  }, 30_000);

  it("carries the messaging protocol to the relay through a chat endpoint, with the path's network", async () => {
    lab.clock.seek(at("16:30"));
    const direct = await subscriber(lab, "+77010000011", "kcell-almaty-mobile");
    const viaCensor = await RelayClient.connect({ host: "c.whatsapp.net", port: 5222, socks: { ...lab.endpoints.socks!, username: "tele2-almaty-mobile" } });
    // The network claimed in the frame is ignored: the path says tele2.
    expect(await viaCensor.register("+77070000012", "beeline-fixed")).toEqual({ type: "registered", number: "+77070000012", network: "tele2-almaty-mobile" });
    expect((await viaCensor.send("+77010000011", "through the censor")).answer).toMatchObject({ type: "ack", status: "accepted" });
    await until(() => messagesOf(direct.got).length === 1, 2000, "the message");
    expect(messagesOf(direct.got)[0]).toMatchObject({ via: "whatsapp", text: "through the censor" });
    expect(lab.interceptor.stats.toRelay).toBeGreaterThanOrEqual(1);
    // In the outage the same endpoint does not even connect.
    lab.clock.seek(at("17:30"));
    await expect(RelayClient.connect({ host: "c.whatsapp.net", port: 5222, socks: { ...lab.endpoints.socks!, username: "tele2-almaty-mobile" }, timeoutMs: 1000 })).rejects.toThrow(/did not open/);
    direct.c.close();
    viaCensor.close();
  });
});

describe("relay transports, the SMS gateway and bad input", () => {
  let lab: Lab;
  beforeAll(async () => { lab = await startLab({ profiles: [PROFILE], at: "2014-02-13T12:00:00+06:00", ports: "auto", network: "kcell-almaty-mobile" }); });
  afterAll(async () => { await lab.stop(); });

  it("speaks WebSocket and UDP on the relay's port", async () => {
    const tcp = await subscriber(lab, "+77010000021", "kcell-almaty-mobile");
    const ep = lab.endpoints.relay!;
    const ws = new WebSocket(`ws://${ep.host}:${ep.port}/`);
    const wsFrames: RelayFrame[] = [];
    ws.on("message", (d) => wsFrames.push(JSON.parse(d.toString()) as RelayFrame));
    await new Promise((r) => ws.once("open", r));
    ws.send(JSON.stringify({ type: "register", number: "+77010000022" }));
    await until(() => wsFrames.some((f) => f.type === "registered"), 2000, "ws register");
    expect(wsFrames[0]).toEqual({ type: "registered", number: "+77010000022", network: "kcell-almaty-mobile" });
    ws.send(JSON.stringify({ type: "send", id: "w1", to: "+77010000021", text: "from a browser", via: "viber" }));
    await until(() => messagesOf(tcp.got).length === 1, 2000, "ws message");
    await until(() => wsFrames.some((f) => f.type === "receipt"), 2000, "ws receipt");
    ws.close();

    const udp = createSocket("udp4");
    const udpFrames: RelayFrame[] = [];
    udp.on("message", (m) => udpFrames.push(JSON.parse(m.toString()) as RelayFrame));
    const dgram = (f: object) => udp.send(JSON.stringify(f), ep.port, ep.host);
    dgram({ type: "register", number: "+77010000023", network: "beeline-almaty-mobile" });
    await until(() => udpFrames.length === 1, 2000, "udp register");
    dgram({ type: "send", id: "u1", to: "+77010000021", text: "over udp", via: "viber" });
    await until(() => messagesOf(tcp.got).length === 2, 2000, "udp message");
    await until(() => udpFrames.length === 3, 2000, "udp receipt");
    expect(udpFrames.map((f) => f.type)).toEqual(["registered", "ack", "receipt"]);
    udp.close();
    tcp.c.close();
  });

  it("takes SMS over HTTP, Kannel style, and answers bad requests clearly", async () => {
    const phone = await subscriber(lab, "+77010000031", "kcell-almaty-mobile");
    const sms = lab.endpoints.sms!;
    const get = (q: string) => run("curl", ["-sS", "-w", " %{http_code}", `http://${sms.host}:${sms.port}/cgi-bin/sendsms?${q}`]);
    expect((await get("username=kcell-almaty-mobile&password=x&from=Bank&to=%2B77010000031&text=code+1234")).stdout).toBe("0: Accepted for delivery\n 202");
    await until(() => messagesOf(phone.got).length === 1, 2000, "the SMS");
    expect(messagesOf(phone.got)[0]).toMatchObject({ via: "sms", from: "Bank", text: "code 1234" });
    expect((await get("username=nowhere&to=1234&text=x")).stdout).toMatch(/^Authorization failed for sendsms.* 403$/s);
    expect((await get("username=kcell-almaty-mobile&text=x")).stdout).toBe("Missing receiver number, rejected\n 400");
    expect((await get("username=kcell-almaty-mobile&to=%2B79990000000&text=x")).stdout).toMatch(/^Sending failed: .*not a subscriber.* 400$/s);
    // In the outage, the operator's message centre refuses.
    lab.clock.seek(at("17:30"));
    expect((await get("username=kcell-almaty-mobile&to=%2B77010000031&text=x")).stdout).toBe("Sending failed: message centre unavailable\n 503");
    lab.clock.seek(at("12:00"));
    phone.c.close();
  });

  it("answers malformed frames, unknown numbers, huge messages and floods, and survives clients vanishing mid-frame", async () => {
    const stats = lab.relay.stats;
    const s = await subscriber(lab, "+77010000041", "kcell-almaty-mobile");
    s.c.write({ type: "nonsense" });
    (s.c as unknown as { socket: { write(b: string): void } }).socket.write("{not json\n");
    s.c.write({ type: "send", id: "big", to: "+77010000041", text: "x".repeat(5000) });
    s.c.write({ type: "send", id: "who", to: "+70000000000", text: "hello?" });
    await until(() => s.got.filter((f) => f.type === "error").length === 4, 2000, "four errors");
    expect(s.got.filter((f) => f.type === "error").map((f) => (f as { code: string }).code)).toEqual(["bad-frame", "bad-frame", "too-large", "unknown-number"]);
    expect(stats.badFrames).toBeGreaterThanOrEqual(3);
    expect(stats.unknownNumber).toBeGreaterThanOrEqual(1);

    // A line longer than a frame may be: an error, then the connection closes.
    const before = stats.oversizedFrames;
    const big = connect(lab.endpoints.relay!.port, lab.endpoints.relay!.host);
    let bigReply = "";
    big.on("data", (d) => (bigReply += d));
    big.write("x".repeat(40_000));
    await new Promise((r) => big.once("close", r));
    expect(bigReply).toMatch(/"code":"too-large"/);
    expect(stats.oversizedFrames).toBe(before + 1);

    // A flood: frames past the per-second limit are refused and counted.
    const floods = stats.floods;
    const lines = Array.from({ length: 12000 }, () => JSON.stringify({ type: "ping" })).join("\n") + "\n";
    (s.c as unknown as { socket: { write(b: string): void } }).socket.write(lines);
    await until(() => s.got.some((f) => f.type === "error" && (f as { code: string }).code === "flood"), 3000, "flood error");
    expect(stats.floods).toBeGreaterThan(floods);

    // Vanishing mid-frame.
    const partial = stats.partialFrames;
    const v = connect(lab.endpoints.relay!.port, lab.endpoints.relay!.host);
    await new Promise((r) => v.once("connect", r));
    v.write('{"type":"register","num');
    await sleep(50);
    v.destroy();
    await until(() => stats.partialFrames === partial + 1, 2000, "partial frame counted");

    // Still serving.
    await sleep(1000); // the flood's second is over
    const t = await subscriber(lab, "+77010000042", "kcell-almaty-mobile");
    expect((await t.c.send("+77010000041", "still here")).answer).toMatchObject({ type: "ack", status: "accepted" });
    await until(() => messagesOf(s.got).some((m) => m.text === "still here"), 2000, "delivery after bad input");
    s.c.close();
    t.c.close();
  });
});

describe("service verdicts: throttle, loss, refusal, a cut connection", () => {
  const VERDICTS = `
id: relay-verdicts
title: relay verdicts
country: ZZ
timezone: UTC
period: { start: "2020-01-01" }
networks: [home, cut]
rules:
  - { id: slow, match: { service: viber }, action: { throttle: { delay: 300ms } } }
  - { id: lossy, match: { service: sms }, action: { throttle: { loss: 0.5 } } }
  - { id: cut, match: { service: whatsapp }, networks: [cut], action: rst }
  - { id: refused, match: { service: whatsapp }, action: { outage: { mode: refuse } } }
`;
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ profiles: [join(writeFiles({ "v.yaml": VERDICTS }), "v.yaml")], ports: "auto", network: "home" });
  });
  afterAll(async () => { await lab.stop(); });

  it("delays throttled messages, loses a share of lossy ones, refuses in an outage and cuts on rst", async () => {
    const to = await subscriber(lab, "+10000000001", "home");
    const from = await subscriber(lab, "+10000000002", "home");
    const t0 = Date.now();
    expect((await from.c.send("+10000000001", "slow", { via: "viber" })).answer).toMatchObject({ type: "ack", status: "accepted" });
    await until(() => messagesOf(to.got).length === 1, 3000, "the throttled message");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);

    for (let i = 0; i < 40; i++) expect((await from.c.send("+10000000001", `sms ${i}`, { via: "sms" })).answer).toMatchObject({ type: "ack", status: "accepted" });
    await sleep(300);
    const delivered = messagesOf(to.got).filter((m) => m.via === "sms").length;
    expect(delivered).toBeGreaterThan(5);
    expect(delivered).toBeLessThan(35);
    expect(lab.relay.stats.lost).toBe(40 - delivered);

    expect((await from.c.send("+10000000001", "wa")).answer).toMatchObject({ type: "error", code: "unavailable" });

    const cut = await subscriber(lab, "+10000000003", "cut");
    const closed = new Promise((r) => cut.c.once("close", r));
    cut.c.write({ type: "send", id: "c1", to: "+10000000001", text: "x", via: "whatsapp" });
    await closed;
    expect(lab.relay.stats.cut).toBe(1);
    to.c.close();
    from.c.close();
  });
});

describe("chokepoint msg (the CLI's reference client)", () => {
  it("sends and listens through a running lab, with exit codes that say what happened", async () => {
    const lab = await startLab({ profiles: [PROFILE], at: "2014-02-13T12:00:00+06:00", ports: "auto" });
    try {
      const relay = `${lab.endpoints.relay!.host}:${lab.endpoints.relay!.port}`;
      const listener = spawn(process.execPath, ["bin/chokepoint.js", "msg", "listen", "--as", "+77010000051", "--network", "kcell-almaty-mobile", "--relay", relay], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "", err = "";
      listener.stdout.on("data", (d) => (out += d));
      listener.stderr.on("data", (d) => (err += d));
      await until(() => err.includes("listening as +77010000051"), 10_000, "the listener");
      const send = (extra: string[]) => run(process.execPath, ["bin/chokepoint.js", "msg", "send", "--from", "+77010000052", "--to", "+77010000051", "--network", "kcell-almaty-mobile", "--relay", relay, ...extra]);
      const ok = await send(["--via", "sms", "--wait-delivery", "hello", "there"]);
      expect(ok.code).toBe(0);
      expect(ok.stdout).toBe("accepted\ndelivered to +77010000051\n");
      await until(() => out.includes("sms +77010000052: hello there"), 5000, "the listener's line");
      lab.clock.seek(at("17:30"));
      const refused = await send(["--via", "sms", "no"]);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toBe("rejected: message centre unavailable\n");
      const silent = await send(["--via", "whatsapp", "--wait-delivery", "--timeout", "1", "hmm"]);
      expect(silent.code).toBe(3);
      expect(silent.stdout).toBe("accepted\nnot delivered within 1 s\n");
      const bad = await send(["--via", "pigeon", "x"]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/--via takes whatsapp, viber, sms/);
      listener.kill("SIGTERM");
    } finally {
      await lab.stop();
    }
  }, 40_000);
});
