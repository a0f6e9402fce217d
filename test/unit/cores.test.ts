// The components' cores, driven below their listeners: the resolver's handle() with DNS
// messages and no socket, the relay's submit and delivery with fake sessions, the
// interceptor on a connected pair of loopback sockets with an upstream that records what it
// is handed. Table-driven over every action, so each action's meaning per component (the
// action table, profile/actions.ts) is pinned here, below the end-to-end tests.
import { describe, expect, it } from "vitest";
import { connect, createServer, type Server, type Socket } from "node:net";
import { ACTIONS, ACTION_TYPES, connectEnactment, messageEnactment, streamEnactment } from "../../src/profile/actions.js";
import { DEFAULT_DPI, type Action, type ActionType, type Match, type Profile } from "../../src/profile/model.js";
import { compilePolicy } from "../../src/policy/engine.js";
import { LabClock } from "../../src/clock/clock.js";
import { EventLog } from "../../src/events/log.js";
import { World } from "../../src/world/world.js";
import { Pki } from "../../src/pki/pki.js";
import type { LabContext } from "../../src/runtime/context.js";
import { Resolver } from "../../src/resolver/resolver.js";
import { encodeQuery, replyAddresses } from "../../src/dns/wire.js";
import { Relay, type Session } from "../../src/relay/relay.js";
import type { RelayFrame } from "../../src/relay/protocol.js";
import { Interceptor } from "../../src/interceptor/interceptor.js";
import { EgressPolicy } from "../../src/runtime/egress.js";
import { Upstream } from "../../src/interceptor/upstream.js";

/** An action of each type, as a profile would write it (parameters where a bare word is not allowed). */
function sample(t: ActionType): Action {
  if (t === "spoof") return ACTIONS.spoof.parse(["198.18.0.66"]);
  if (t === "blockpage") return ACTIONS.blockpage.parse({ status: 451, body: "blocked" });
  if (t === "outage") return ACTIONS.outage.parse({ mode: "refuse" });
  return (ACTIONS[t].parse as (p: undefined) => Action)(undefined);
}

function ctxWith(action: Action, match: Match): LabContext {
  const profile: Profile = {
    id: "t", title: "t", country: "ZZ", timezone: "UTC", period: { start: 0 }, kind: "event", networks: ["n"], sources: [],
    dpi: DEFAULT_DPI, world: { hosts: {}, nonexistent: [], certs: {} }, variants: {}, expect: [],
    rules: [{ id: "r", profile: "t", match, action, networks: ["n"] }],
  };
  const events = new EventLog();
  events.forceWanted = true;
  return { policy: compilePolicy([profile]), clock: new LabClock({ at: 1_000_000 }), world: new World({ hosts: {}, nonexistent: [], certs: {} }), pki: new Pki(process.env.CHOKEPOINT_CONFDIR!), events };
}

describe("resolver core (no sockets): every action's DNS column", () => {
  it.each(ACTION_TYPES)("%s", async (t) => {
    const a = sample(t);
    const ctx = ctxWith(a, { domain: ["x.example"] });
    const seen: string[] = [];
    ctx.events.subscribe((e) => seen.push(e.action));
    const r = new Resolver(ctx);
    const udp = await r.handle(encodeQuery(7, "x.example"), { network: "n", client: "198.18.0.2:5353", transport: "udp" });
    expect(seen).toEqual([t]);
    const world = ctx.world.answer("x.example", "A").answers.map((x) => x.address);
    const how = ACTIONS[t].dns;
    if (how === "silence") return void expect(udp).toBeNull();
    expect(udp).not.toBeNull();
    const reply = replyAddresses(udp!);
    const tc = (udp!.readUInt16BE(2) & 0x0200) !== 0;
    switch (how) {
      case "world": expect(reply).toEqual({ rcode: 0, addresses: world }); break;
      case "rcode": expect(reply.rcode).toBe({ nxdomain: 3, refused: 5, servfail: 2 }[t as "nxdomain"]); break;
      case "spoof": expect(reply.addresses).toEqual(["198.18.0.66"]); break;
      case "empty": expect(reply).toEqual({ rcode: 0, addresses: [] }); break;
      case "truncate": {
        expect(tc).toBe(true);
        // The retry over TCP gets the world's answer: that is what truncation forces.
        const overTcp = await r.handle(encodeQuery(8, "x.example"), { network: "n", client: "198.18.0.2:5353", transport: "tcp" });
        expect(replyAddresses(overTcp!).addresses).toEqual(world);
        break;
      }
    }
  });
});

class FakeSession implements Session {
  readonly frames: RelayFrame[] = [];
  closedHow: string | undefined;
  number?: string;
  network?: string;
  readonly transport = "tcp" as const;
  readonly backlogged = false;
  constructor(readonly client: string) {}
  get closed(): boolean { return this.closedHow !== undefined; }
  write(f: RelayFrame): void { this.frames.push(f); }
  close(how: "rst" | "fin"): void { this.closedHow = how; }
}

describe("relay core (fake sessions): every action's message column", () => {
  it.each(ACTION_TYPES)("%s", async (t) => {
    const ctx = ctxWith(sample(t), { service: ["whatsapp"] });
    const relay = new Relay(ctx, { networks: ["n"], defaultNetwork: "n" });
    const a = new FakeSession("198.18.0.2:1"), b = new FakeSession("198.18.0.3:1");
    relay.frame(a, JSON.stringify({ type: "register", number: "+7700", network: "n" }));
    relay.frame(b, JSON.stringify({ type: "register", number: "+7701", network: "n" }));
    relay.frame(a, JSON.stringify({ type: "send", id: "m1", to: "+7701", text: "hi", via: "whatsapp" }));
    await new Promise((r) => setTimeout(r, 30)); // deliveries go out on the next turn (a throttle adds its own pace)
    const answer = a.frames.find((f) => (f.type === "ack" || f.type === "error") && f.id === "m1");
    const delivered = b.frames.some((f) => f.type === "message");
    relay.stop();
    const how = messageEnactment(sample(t));
    const expected = {
      deliver: { answer: "ack:accepted", delivered: true, closed: undefined },
      throttle: { answer: "ack:accepted", delivered: true, closed: undefined },
      outage: { answer: "error:unavailable", delivered: false, closed: undefined },
      reject: { answer: "error:rejected", delivered: false, closed: undefined },
      queue: { answer: "ack:queued", delivered: false, closed: undefined },
      cut: { answer: undefined, delivered: false, closed: t === "rst" ? "rst" : "fin" },
      silence: { answer: undefined, delivered: false, closed: undefined },
    }[how];
    const got = answer ? `${answer.type}:${answer.type === "ack" ? answer.status : (answer as { code: string }).code}` : undefined;
    expect({ answer: got, delivered, closed: a.closedHow }).toEqual(expected);
  });
});

/** A loopback listener that hands over each accepted socket (the censor's side of a client connection). */
async function socketPairs(): Promise<{ pair: () => Promise<{ client: Socket; censor: Socket }>; close: () => void }> {
  const waiting: ((s: Socket) => void)[] = [];
  const server: Server = createServer((s) => waiting.shift()?.(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    pair: async () => {
      const censor = new Promise<Socket>((r) => waiting.push(r));
      const client = connect(port, "127.0.0.1");
      client.on("error", () => undefined);
      return { client, censor: await censor };
    },
    close: () => server.close(),
  };
}

/** What the client of an intercepted flow saw within `ms` after sending `bytes`. */
function clientSees(client: Socket, bytes: Buffer | undefined, ms: number): Promise<{ data: string; ended: "reset" | "fin" | "open" }> {
  return new Promise((resolve) => {
    let data = "";
    const done = (ended: "reset" | "fin" | "open"): void => { clearTimeout(timer); client.destroy(); resolve({ data, ended }); };
    const timer = setTimeout(() => done("open"), ms);
    client.on("data", (d: Buffer) => { data += d.toString("latin1"); });
    client.on("error", () => done("reset"));
    client.on("end", () => done("fin"));
    if (bytes) client.write(bytes);
  });
}

describe("interceptor core (a loopback socket pair, a recording upstream)", () => {
  const request = Buffer.from("GET / HTTP/1.1\r\nHost: x.example\r\n\r\n");
  it.each(ACTION_TYPES)("%s: the connect column, then the stream column", async (t) => {
    const pairs = await socketPairs();
    // The origin stands in as an echo (after the PROXY line), and records flows handed over in-process.
    const echo = createServer((s) => { s.on("error", () => undefined); s.pipe(s); });
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", () => r()));
    const adopted: string[] = [];
    const run = async (match: Match, bytes: Buffer | undefined): Promise<{ data: string; ended: string; adopted: number; refused?: string }> => {
      const ctx = ctxWith(sample(t), match);
      const upstream = new Upstream({
        world: ctx.world, egress: new EgressPolicy({ own: () => [] }),
        origin: { address: () => ({ host: "127.0.0.1", port: (echo.address() as { port: number }).port }), sink: { adopt: (s) => { adopted.push("x"); s.end("adopted"); return true; } } },
      });
      const icpt = new Interceptor(ctx, upstream);
      const { client, censor } = await pairs.pair();
      let refused: string | undefined;
      const before = adopted.length;
      void icpt.intercept(censor, { host: "x.example", ip: "198.19.9.9", port: 80 }, "n", {
        entry: "socks", hooks: { established: () => undefined, refused: (how) => { refused = how; if (how === "rst") censor.resetAndDestroy(); } },
      });
      const seen = await clientSees(client, bytes, 400);
      return { ...seen, adopted: adopted.length - before, ...(refused ? { refused } : {}) };
    };
    const a = sample(t);
    // At connect time, on the address.
    const atConnect = await run({ ip: ["198.19.9.9"] }, request);
    const c = connectEnactment(a);
    if (c === "reset") expect(atConnect.refused).toBe("rst");
    if (c === "silence") expect(atConnect).toMatchObject({ refused: "drop", ended: "open", data: "" });
    if (c === "pass") expect(atConnect.refused).toBeUndefined();
    // After the first bytes, on the Host.
    const s = await run({ host: ["x.example"] }, request);
    expect(s.refused).toBeUndefined();
    switch (streamEnactment(a)) {
      case "pass": expect(s).toMatchObject({ adopted: 1, data: "adopted" }); break;
      case "throttle": case "mitm": expect(s.adopted).toBe(0); expect(s.data).toContain("GET / HTTP/1.1"); break; // spliced through the lab (an HTTP flow is not MITMed)
      case "reset": expect(s.ended).toBe("reset"); break;
      case "close": expect(s).toMatchObject({ ended: "fin", data: "" }); break;
      case "page": expect(s.data).toMatch(/^HTTP\/1\.1 451 /); break;
      case "alert": expect(Buffer.from(s.data, "latin1")[0]).toBe(0x15); break;
      case "silence": expect(s).toMatchObject({ ended: "open", data: "", adopted: 0 }); break;
    }
    pairs.close();
    echo.close();
  });
});
