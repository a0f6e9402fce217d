import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSocket } from "node:dgram";
import { connect } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import dnsPacket from "dns-packet";
import { startLab, type Lab } from "../../src/index.js";
import { writeFiles } from "../helpers/profiles.js";
import { run } from "../helpers/tools.js";

const ALL_ACTIONS = `
id: dns-actions
title: every DNS action
country: ZZ
timezone: UTC
period: { start: "2020-01-01" }
networks: [home, mobile]
rules:
  - { id: refused, match: { domain: refused.example }, action: refused }
  - { id: servfail, match: { domain: servfail.example }, action: servfail }
  - { id: empty, match: { domain: empty.example }, action: empty }
  - { id: truncate, match: { domain: tc.example }, action: truncate }
  - { id: spoof6, match: { domain: spoof6.example }, action: { spoof: { addresses: ["198.18.0.7", "2001:db8::7"], ttl: 30 } } }
  - { id: half, match: { domain: coin.example }, probability: 0.5, action: nxdomain }
  - { id: mobile-only, match: { domain: .mobile.example }, networks: [mobile], action: nxdomain }
  - { id: later, match: { domain: later.example }, window: { relative: { after: 1h } }, action: nxdomain }
  - { id: rst-name, match: { domain: rst.example }, action: rst }
`;

/** The response code of a reply (dns-packet decodes it; its types do not declare it). */
const rcodeOf = (msg: Buffer): string => (dnsPacket.decode(msg) as unknown as { rcode: string }).rcode;

let lab: Lab;
let basic: Lab;
let dns: { host: string; port: number };

const dig = async (l: Lab | { host: string; port: number }, args: string[]) => {
  const ep = "endpoints" in l ? l.endpoints.dns! : l;
  return run("dig", [`@${ep.host}`, "-p", String(ep.port), "+tries=1", "+time=2", ...args]);
};

beforeAll(async () => {
  basic = await startLab({ profiles: ["example-basics"] });
  dns = basic.endpoints.dns!;
  const dir = writeFiles({ "p.yaml": ALL_ACTIONS });
  lab = await startLab({ profiles: [join(dir, "p.yaml")], network: "home" });
});
afterAll(async () => { await basic.stop(); await lab.stop(); });

describe("resolver with real dig (the example profile)", () => {
  for (const mode of [[], ["+tcp"], ["+noedns"], ["+tcp", "+noedns"]]) {
    const label = mode.join(" ") || "udp, edns";
    it(`NXDOMAIN, spoof, timeout and the world's address (${label})`, async () => {
      const nx = await dig(dns, [...mode, "nx.example.org"]);
      expect(nx.stdout).toMatch(/status: NXDOMAIN/);
      const spoof = await dig(dns, [...mode, "+short", "spoof.example.org"]);
      expect(spoof.stdout.trim()).toBe("198.18.0.66");
      const silent = await dig(dns, [...mode, "silent.example.org"]);
      expect(silent.code).toBe(9);
      expect(silent.stdout).toMatch(/timed out|no servers could be reached/);
      const any = await dig(dns, [...mode, "+short", "anything.example"]);
      expect(any.stdout.trim()).toBe(basic.world.addresses("anything.example").v4[0]);
      const full = await dig(dns, [...mode, "anything.example"]);
      if (mode.includes("+noedns")) expect(full.stdout).not.toMatch(/OPT PSEUDOSECTION/);
      else expect(full.stdout).toMatch(/EDNS: version: 0, flags:; udp: 1232/);
    });
  }

  it("preserves the question's case, echoes the ID, answers AAAA, TXT, HTTPS, ANY and CNAME", async () => {
    const r = await dig(dns, ["MiXeD.ExAmPlE.org"]);
    expect(r.stdout).toMatch(/;MiXeD\.ExAmPlE\.org\.\s+IN\s+A/);
    expect(r.stdout).toMatch(/MiXeD\.ExAmPlE\.org\.\s+300\s+IN\s+A\s+198\.19\./);
    const aaaa = await dig(dns, ["+short", "AAAA", "anything.example"]);
    expect(aaaa.stdout.trim()).toMatch(/^2001:db8:19:/);
    for (const t of ["TXT", "HTTPS", "CNAME", "MX"]) {
      const n = await dig(dns, [t, "anything.example"]);
      expect(n.stdout).toMatch(/status: NOERROR/);
      expect(n.stdout).toMatch(/ANSWER: 0,/);
    }
    const anyq = await dig(dns, ["ANY", "anything.example"]);
    expect(anyq.stdout).toMatch(/ANSWER: 2,/);
    expect((await dig(dns, ["x.invalid"])).stdout).toMatch(/status: NXDOMAIN/);
  });

  it("records one event per query with name, type, network, client, action, rule", async () => {
    const seen: Record<string, unknown>[] = [];
    const unsub = basic.eventLog.subscribe((e) => seen.push(e as unknown as Record<string, unknown>));
    await dig(dns, ["+short", "spoof.example.org"]);
    await dig(dns, ["+short", "+tcp", "fine.example"]);
    unsub();
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject({ component: "resolver", network: "default", action: "spoof", rule: "dns-spoof", profile: "example-basics", observation: { name: "spoof.example.org", qtype: "A", transport: "udp" } });
    expect(String(seen[0]!.client)).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(seen[1]).toMatchObject({ action: "allow", observation: { name: "fine.example", transport: "tcp" } });
  });
});

describe("resolver actions", () => {
  it("refused, servfail, empty, spoof by type, and rst enacted as silence", async () => {
    expect((await dig(lab, ["refused.example"])).stdout).toMatch(/status: REFUSED/);
    expect((await dig(lab, ["servfail.example"])).stdout).toMatch(/status: SERVFAIL/);
    const empty = await dig(lab, ["empty.example"]);
    expect(empty.stdout).toMatch(/status: NOERROR/);
    expect(empty.stdout).toMatch(/ANSWER: 0,/);
    expect((await dig(lab, ["+short", "spoof6.example"])).stdout.trim()).toBe("198.18.0.7");
    expect((await dig(lab, ["+short", "AAAA", "spoof6.example"])).stdout.trim()).toBe("2001:db8::7");
    expect((await dig(lab, ["spoof6.example"])).stdout).toMatch(/spoof6\.example\.\s+30\s+IN\s+A/);
    expect((await dig(lab, ["rst.example"])).code).toBe(9);
  });

  it("truncate sets TC over UDP, and the retry over TCP gets the answer", async () => {
    const noRetry = await dig(lab, ["+ignore", "tc.example"]);
    expect(noRetry.stdout).toMatch(/flags: qr tc rd ra/);
    const withRetry = await dig(lab, ["tc.example"]);
    expect(withRetry.stdout).toMatch(/Truncated, retrying in TCP mode/);
    expect(withRetry.stdout).toMatch(/tc\.example\.\s+300\s+IN\s+A\s+198\.19\./);
  });

  it("probability blocks a share of queries", async () => {
    let nx = 0;
    for (let i = 0; i < 40; i++) if ((await dig(lab, ["coin.example"])).stdout.includes("NXDOMAIN")) nx++;
    expect(nx).toBeGreaterThan(5);
    expect(nx).toBeLessThan(35);
  });

  it("applies rules per network (which listener) and per window", async () => {
    expect((await dig(lab, ["a.mobile.example"])).stdout).toMatch(/status: NOERROR/);
    const mobile = lab.endpoints.networks!.mobile!.dns!;
    expect((await dig(mobile, ["a.mobile.example"])).stdout).toMatch(/status: NXDOMAIN/);
    expect((await dig(lab, ["later.example"])).stdout).toMatch(/status: NOERROR/);
    lab.clock.seek(lab.clock.now() + 3_600_000);
    expect((await dig(lab, ["later.example"])).stdout).toMatch(/status: NXDOMAIN/);
  });
});

describe("resolver answer cache", () => {
  const CACHED = `
id: dns-cache
title: cache
country: ZZ
timezone: UTC
period: { start: "2020-01-01" }
networks: [home]
rules:
  - { id: soon, match: { domain: soon.example }, window: { relative: { after: 10m } }, action: nxdomain }
`;
  it("answers repeated queries from the cache, each with its own ID and event, and still turns at window edges and seeks", async () => {
    const dir = writeFiles({ "c.yaml": CACHED });
    const eventsFile = join(dir, "ev.jsonl");
    const cacheLab = await startLab({ profiles: [join(dir, "c.yaml")], network: "home", events: eventsFile });
    try {
      const ep = cacheLab.endpoints.dns!;
      const sock = createSocket("udp4");
      const ask = (id: number): Promise<dnsPacket.Packet> => new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("no reply")), 2000);
        sock.once("message", (m) => { clearTimeout(t); resolve(dnsPacket.decode(m)); });
        sock.send(dnsPacket.encode({ type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: "soon.example", type: "A", class: "IN" }] } as dnsPacket.Packet), ep.port, ep.host);
      });
      const rcode = (p: dnsPacket.Packet): string => (p as unknown as { rcode: string }).rcode;
      const before = cacheLab.resolver.stats.cacheHits;
      for (let id = 100; id < 120; id++) {
        const r = await ask(id);
        expect(r.id).toBe(id);
        expect(rcode(r)).toBe("NOERROR");
        expect((r.answers?.[0] as { data?: unknown } | undefined)?.data).toBe(cacheLab.world.answer("soon.example", "A").answers[0]!.address);
      }
      expect(cacheLab.resolver.stats.cacheHits - before).toBe(19);
      cacheLab.clock.seek(cacheLab.clock.now() + 10 * 60_000);
      expect(rcode(await ask(200))).toBe("NXDOMAIN");
      expect(rcode(await ask(201))).toBe("NXDOMAIN");
      cacheLab.clock.seek(cacheLab.clock.now() - 20 * 60_000);
      expect(rcode(await ask(202))).toBe("NOERROR");
      sock.close();
      await cacheLab.stop();
      const events = readFileSync(eventsFile, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((e) => e.component === "resolver");
      expect(events).toHaveLength(23);
      expect(new Set(events.map((e) => e.flow)).size).toBe(23);
      expect(events.filter((e) => e.action === "nxdomain").map((e) => e.flow.split(":").pop())).toEqual(["200", "201"]);
    } finally {
      await cacheLab.stop();
    }
  });

  it("is off when a rule has a probability (each query draws anew)", () => {
    expect(lab.policy.deterministic).toBe(false);
    expect(basic.policy.deterministic).toBe(true);
  });
});

describe("resolver protocol details and bad input", () => {
  const tcpExchange = (frames: Buffer[], wait = 500): Promise<Buffer[]> => new Promise((resolve) => {
    const s = connect(dns.port, dns.host, () => s.write(Buffer.concat(frames)));
    let buf = Buffer.alloc(0);
    const out: Buffer[] = [];
    s.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length === frames.length) s.end();
    });
    s.on("close", () => resolve(out));
    s.on("error", () => resolve(out));
    setTimeout(() => { s.destroy(); resolve(out); }, wait);
  });
  const frame = (msg: Buffer): Buffer => Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg]);
  const q = (name: string, id: number) => dnsPacket.encode({ type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: "A", class: "IN" }] } as dnsPacket.Packet);

  it("answers several queries on one TCP connection, each with its ID", async () => {
    const replies = await tcpExchange([frame(q("one.example", 1)), frame(q("nx.example.org", 2)), frame(q("three.example", 3))]);
    expect(replies.map((r) => dnsPacket.decode(r).id)).toEqual([1, 2, 3]);
    expect(rcodeOf(replies[1]!)).toBe("NXDOMAIN");
  });

  it("closes TCP connections with an oversized length, and counts it", async () => {
    const before = basic.resolver.stats.tcpOversized;
    const replies = await tcpExchange([Buffer.from([0xff, 0xff, 1, 2, 3])]);
    expect(replies).toEqual([]);
    expect(basic.resolver.stats.tcpOversized).toBe(before + 1);
  });

  it("times out TCP clients that connect and send nothing", async () => {
    const { DnsListener } = await import("../../src/resolver/listeners.js");
    const l = new DnsListener(basic.resolver, { network: "default", host: "127.0.0.1", port: 0, idleMs: 300 });
    const port = await l.listen();
    const before = basic.resolver.stats.tcpIdleTimeouts;
    const closedAfter = await new Promise<number>((resolve) => {
      const t0 = Date.now();
      const s = connect(port, "127.0.0.1");
      s.on("close", () => resolve(Date.now() - t0));
      s.on("error", () => undefined);
    });
    expect(closedAfter).toBeGreaterThanOrEqual(250);
    expect(basic.resolver.stats.tcpIdleTimeouts).toBe(before + 1);
    await l.close();
  });

  it("answers FORMERR / NOTIMP as a real server would, and drops what cannot be answered", async () => {
    const sock = createSocket("udp4");
    const ask = (msg: Buffer): Promise<Buffer | null> => new Promise((resolve) => {
      const t = setTimeout(() => { sock.removeAllListeners("message"); resolve(null); }, 300);
      sock.once("message", (m) => { clearTimeout(t); resolve(m); });
      sock.send(msg, dns.port, dns.host);
    });
    const good = q("x.example", 99);
    const zeroQ = Buffer.from(good); zeroQ.writeUInt16BE(0, 4);
    expect(rcodeOf((await ask(zeroQ))!)).toBe("FORMERR");
    const op = Buffer.from(good); op[2] = (op[2]! & 0x87) | (2 << 3);
    expect(rcodeOf((await ask(op))!)).toBe("NOTIMP");
    const loop = Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
    const lr = (await ask(loop))!;
    expect(lr.readUInt16BE(0)).toBe(99);
    expect(lr[3]! & 0xf).toBe(1);
    expect(await ask(Buffer.from([1, 2, 3]))).toBeNull();
    sock.close();
    expect(basic.resolver.stats.malformed).toBeGreaterThanOrEqual(4);
  });

  it("survives 100,000 random and mutated packets, then answers a normal query correctly", async () => {
    let seed = 20261122;
    const rand = (): number => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const seeds = [q("fuzz.example", 1), q("nx.example.org", 2), dnsPacket.encode({ type: "query", id: 3, questions: [{ name: "a.b.c", type: "AAAA", class: "IN" }], additionals: [{ type: "OPT", name: ".", udpPayloadSize: 4096 } as unknown as dnsPacket.Answer] } as dnsPacket.Packet)];
    const sock = createSocket("udp4");
    sock.on("message", () => undefined);
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
    const before = basic.resolver.stats.malformed + basic.resolver.stats.queries;
    for (let i = 0; i < 100_000; i++) {
      let pkt: Buffer;
      if (i % 3 === 0) {
        pkt = Buffer.alloc(Math.floor(rand() * 600));
        for (let j = 0; j < pkt.length; j++) pkt[j] = Math.floor(rand() * 256);
      } else {
        pkt = Buffer.from(seeds[i % seeds.length]!);
        const flips = 1 + Math.floor(rand() * 6);
        for (let f = 0; f < flips; f++) pkt[Math.floor(rand() * pkt.length)] = Math.floor(rand() * 256);
        if (rand() < 0.2) pkt = pkt.subarray(0, Math.floor(rand() * pkt.length));
      }
      sock.send(pkt, dns.port, dns.host);
      // Pace the sender (same process as the resolver) so the kernel's receive buffer does not
      // overflow: every 20 packets, let the resolver drain its socket.
      if (i % 20 === 19) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 500));
    sock.close();
    const handled = basic.resolver.stats.malformed + basic.resolver.stats.queries - before;
    expect(handled).toBeGreaterThan(95_000); // UDP may lose a few; the rest must have been judged
    // A client this busy was given a connected socket of its own (the fast path), and the
    // queries that came through it were answered as well.
    expect(basic.resolver.stats.udpClientSockets).toBeGreaterThan(0);
    const ok = await dig(dns, ["+short", "after.fuzz.example"]);
    expect(ok.stdout.trim()).toBe(basic.world.addresses("after.fuzz.example").v4[0]);
    expect((await dig(dns, ["nx.example.org"])).stdout).toMatch(/NXDOMAIN/);
  });
});

describe("resolver helper processes (--dns-workers)", () => {
  it("answer on the shared UDP socket, and their events reach the lab's log", async () => {
    const { tempDir } = await import("../helpers/profiles.js");
    const file = join(tempDir(), "events.jsonl");
    const multi = await startLab({ profiles: ["example-basics"], dnsWorkers: 2, events: file });
    const ep = multi.endpoints.dns!;
    let nx = 0;
    for (let i = 0; i < 30; i++) {
      const r = await run("dig", [`@${ep.host}`, "-p", String(ep.port), "+tries=1", "+time=2", `q${i}.nx.example.org`]);
      if (r.stdout.includes("NOERROR")) nx++;
    }
    expect(nx).toBe(30); // nx.example.org is exact: subdomains resolve
    expect((await run("dig", [`@${ep.host}`, "-p", String(ep.port), "+short", "spoof.example.org"])).stdout.trim()).toBe("198.18.0.66");
    // A burst from one socket: the kernel hands datagrams to whichever process reads first.
    const sock = createSocket("udp4");
    let replies = 0;
    sock.on("message", () => replies++);
    for (let i = 0; i < 300; i++) sock.send(dnsPacket.encode({ type: "query", id: i, questions: [{ name: `burst${i}.example`, type: "A", class: "IN" }] } as dnsPacket.Packet), ep.port, ep.host);
    for (let t = 0; t < 50 && replies < 300; t++) await new Promise((r) => setTimeout(r, 50));
    sock.close();
    expect(replies).toBe(300);
    multi.clock.seek(Date.parse("2030-01-01T00:00:00Z"));
    await new Promise((r) => setTimeout(r, 100));
    await run("dig", [`@${ep.host}`, "-p", String(ep.port), "+short", "after-seek.example"]);
    await multi.stop();
    const events = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(events).toHaveLength(332);
    expect(multi.resolver.stats.queries).toBe(332);
    expect(multi.resolverWorkers!.handled).toBeGreaterThan(0);
    expect(events.find((e) => e.observation.name === "after-seek.example").labTime).toMatch(/^2030-01-01/);
  });

  it("count what they decide while nobody reads events, and send events once someone does", async () => {
    const multi = await startLab({ profiles: ["example-basics"], dnsWorkers: 2 });
    const ep = multi.endpoints.dns!;
    const burst = async (prefix: string): Promise<void> => {
      const sock = createSocket("udp4");
      let replies = 0;
      sock.on("message", () => replies++);
      for (let i = 0; i < 300; i++) {
        sock.send(dnsPacket.encode({ type: "query", id: i, questions: [{ name: `${prefix}${i}.nx.example.org`, type: "A", class: "IN" }] } as dnsPacket.Packet), ep.port, ep.host);
        if (i % 20 === 19) await new Promise((r) => setTimeout(r, 2)); // no kernel buffer overflow
      }
      for (let t = 0; t < 50 && replies < 300; t++) await new Promise((r) => setTimeout(r, 50));
      sock.close();
      expect(replies).toBe(300);
    };
    await burst("a");
    await new Promise((r) => setTimeout(r, 200)); // the helpers' batches
    expect(multi.eventLog.total).toBe(300);
    expect(multi.eventLog.counters.allow!.default).toBe(300);
    expect(multi.resolverWorkers!.handled).toBeGreaterThan(0);
    const seen: string[] = [];
    const unsub = multi.eventLog.subscribe((e) => seen.push(String(e.observation?.name)));
    await new Promise((r) => setTimeout(r, 200)); // the helpers hear that events are wanted
    await burst("b");
    await new Promise((r) => setTimeout(r, 200));
    unsub();
    expect(seen).toHaveLength(300);
    expect(new Set(seen).size).toBe(300);
    await multi.stop();
  });
});

describe("--world internet", () => {
  it("forwards allowed queries byte for byte to the upstream resolver and still enacts its own rules", async () => {
    // The upstream here is another lab (its world answers), standing in for a real resolver.
    const up = await startLab({ profiles: ["example-basics"] });
    const u = up.endpoints.dns!;
    const lab2 = await startLab({ profiles: ["example-basics"], world: "internet", upstream: `${u.host}:${u.port}` });
    const d = lab2.endpoints.dns!;
    const q = (args: string[]) => run("dig", [`@${d.host}`, "-p", String(d.port), "+tries=1", "+time=2", ...args]);
    expect((await q(["+short", "forwarded.example"])).stdout.trim()).toBe(up.world.addresses("forwarded.example").v4[0]);
    expect((await q(["nx.example.org"])).stdout).toMatch(/NXDOMAIN/); // judged here, not upstream
    expect((await q(["+short", "spoof.example.org"])).stdout.trim()).toBe("198.18.0.66");
    expect(lab2.resolver.stats.forwarded).toBe(1);
    expect(up.resolver.stats.queries).toBe(1);
    await lab2.stop();
    await up.stop();
    const noUp = await startLab({ profiles: ["example-basics"], world: "internet", upstream: "127.0.0.1:9" });
    const n = noUp.endpoints.dns!;
    const r = await run("dig", [`@${n.host}`, "-p", String(n.port), "+tries=1", "+time=5", "x.example"]);
    expect(r.stdout).toMatch(/SERVFAIL/);
    await noUp.stop();
  });
});
