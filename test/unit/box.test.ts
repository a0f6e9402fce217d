// The on-path box, packet by packet (no kernel): each switch of a box model against the
// evasion it decides (Geneva's insertion, segmentation, desynchronization and teardown
// packets), with a test that fails when the switch is ignored.
import { describe, expect, it } from "vitest";
import { Box, TAKEOVER_MARK } from "../../src/box/box.js";
import { buildTcp4, parseTcp4 } from "../../src/box/packet.js";
import { DEFAULT_BOX, type BoxModel } from "../../src/profile/box-model.js";
import { buildClientHello } from "../../src/conformance/flows.js";
import type { Verdict } from "../../src/policy/types.js";

const C = { ip: "198.18.128.2", port: 40000 }, S = { ip: "198.19.1.1", port: 443 };
const ISN = 1000, SSN = 5000;
const hello = buildClientHello({ ciphers: [0x1301, 0xc02b], sni: "blocked.example" });

/** A box that blocks SNI blocked.example with `action`, and the verdicts it gave. */
function boxWith(model: Partial<BoxModel>, action: Verdict["action"] = { type: "drop" }, hops = 0): { box: Box; judged: string[] } {
  const judged: string[] = [];
  const box = new Box({ ...DEFAULT_BOX, ...model }, (obs) => {
    const v: Verdict = obs.sni === "blocked.example" ? { action, rule: "r", profile: "p", residual: { ms: 120_000, key: "4-tuple", renew: true } } : { action: { type: "allow" } };
    judged.push(`${obs.sni ?? obs.protocol}:${v.action.type}`);
    return v;
  }, hops);
  return { box, judged };
}

const pkt = (from: "c" | "s", o: { seq: number; ack?: number; flags: Record<string, boolean>; payload?: Buffer; ttl?: number; badChecksum?: boolean }) => parseTcp4(buildTcp4({
  ...(from === "c" ? { src: C.ip, dst: S.ip, sport: C.port, dport: S.port } : { src: S.ip, dst: C.ip, sport: S.port, dport: C.port }),
  seq: o.seq, ack: o.ack ?? 0, flags: o.flags, ...(o.payload ? { payload: o.payload } : {}), ...(o.ttl ? { ttl: o.ttl } : {}), ...(o.badChecksum ? { badChecksum: true } : {}),
}))!;

/** The three-way handshake through the box. */
function handshake(box: Box): void {
  box.packet(pkt("c", { seq: ISN, flags: { syn: true } }));
  box.packet(pkt("s", { seq: SSN, ack: ISN + 1, flags: { syn: true, ack: true } }));
  box.packet(pkt("c", { seq: ISN + 1, ack: SSN + 1, flags: { ack: true } }));
}
const helloAt = (seq: number, bytes = hello) => pkt("c", { seq, ack: SSN + 1, flags: { ack: true, psh: true }, payload: bytes });
const decoy = Buffer.from("GET / HTTP/1.1\r\nHost: innocuous.example\r\n\r\n");

describe("packets", () => {
  it("parses what it builds, and knows a bad checksum", () => {
    const p = pkt("c", { seq: 7, flags: { syn: true }, ttl: 3 });
    expect(p).toMatchObject({ src: C.ip, dport: 443, seq: 7, ttl: 3, checksumOk: true, flags: { syn: true, ack: false } });
    expect(pkt("c", { seq: 7, flags: { ack: true }, payload: decoy, badChecksum: true }).checksumOk).toBe(false);
  });
});

describe("the box, switch by switch", () => {
  it("judges the ClientHello and drops it, null-routing the 4-tuple when the rule says residual", () => {
    const { box } = boxWith({});
    handshake(box);
    const v = box.packet(helloAt(ISN + 1));
    expect(v).toMatchObject({ pass: false, residual: 120 });
    expect(v.decided).toBeUndefined(); // the null route is the whole block: free again when it expires
  });

  it("a client's new SYN on a 4-tuple decided before (its port reused) is a new flow, judged again", () => {
    const { box, judged } = boxWith({}, { type: "allow" });
    handshake(box);
    box.packet(helloAt(ISN + 1));
    expect(box.packet(helloAt(ISN + 1 + hello.length)).pass).toBe(true); // decided: no judgement
    expect(judged).toHaveLength(1);
    // The same port again, a new connection (another ISN): judged anew.
    box.packet(pkt("c", { seq: ISN + 50_000, flags: { syn: true } }));
    box.packet(pkt("s", { seq: SSN, ack: ISN + 50_001, flags: { syn: true, ack: true } }));
    box.packet(pkt("c", { seq: ISN + 50_001, ack: SSN + 1, flags: { ack: true } }));
    box.packet(pkt("c", { seq: ISN + 50_001, ack: SSN + 1, flags: { ack: true, psh: true }, payload: hello }));
    expect(judged).toHaveLength(2);
  });

  it("checksum: an insertion packet with a bad checksum fools a box that does not validate, not one that does", () => {
    for (const [checksum, fooled] of [["ignore", true], ["validate", false]] as const) {
      const { box } = boxWith({ checksum });
      handshake(box);
      box.packet(pkt("c", { seq: ISN + 1, ack: SSN + 1, flags: { ack: true, psh: true }, payload: decoy, badChecksum: true }));
      expect(box.packet(helloAt(ISN + 1)).pass, checksum).toBe(fooled);
    }
  });

  it("inspect: a ClientHello split in two, or its segments out of order, evade a first-packet box and not a reassembling one", () => {
    for (const [inspect, evaded] of [["first-packet", true], ["reassemble", false]] as const) {
      const split = boxWith({ inspect });
      handshake(split.box);
      const a = split.box.packet(helloAt(ISN + 1, hello.subarray(0, 30)));
      const b = split.box.packet(helloAt(ISN + 31, hello.subarray(30)));
      expect(a.pass && b.pass, `split, ${inspect}`).toBe(evaded);
      const ooo = boxWith({ inspect });
      handshake(ooo.box);
      const later = ooo.box.packet(helloAt(ISN + 31, hello.subarray(30)));
      const first = ooo.box.packet(helloAt(ISN + 1, hello.subarray(0, 30)));
      expect(later.pass && first.pass, `out of order, ${inspect}`).toBe(evaded);
    }
  });

  it("bufferLimit: a request padded past the limit is judged on its first bytes only (KZ HTTP 2020-22: 1,434)", () => {
    const { box, judged } = boxWith({ inspect: "reassemble", bufferLimit: 1434 });
    handshake(box);
    const padded = Buffer.concat([Buffer.from("GET / HTTP/1.1\r\nX-Pad: "), Buffer.alloc(1500, "a"), Buffer.from("\r\nHost: x\r\n\r\n")]);
    box.packet(helloAt(ISN + 1, padded.subarray(0, 1000)));
    box.packet(helloAt(ISN + 1001, padded.subarray(1000)));
    expect(judged).toHaveLength(1);
  });

  it("teardown: a RST decoy ends the state of a box that honours it (the ClientHello then goes unseen), not of one that ignores RSTs", () => {
    for (const [teardown, evaded] of [["rst-fin", true], ["ignore", false]] as const) {
      const { box } = boxWith({ teardown });
      handshake(box);
      box.packet(pkt("c", { seq: ISN + 1, flags: { rst: true }, ttl: 2 }));
      expect(box.packet(helloAt(ISN + 1)).pass, teardown).toBe(evaded);
    }
  });

  it("flowFrom syn: a SYN/ACK sent before the SYN reverses the box's roles (TCB turnaround), and the ClientHello goes unread", () => {
    const { box, judged } = boxWith({ flowFrom: "syn" });
    box.packet(pkt("c", { seq: ISN, ack: 1, flags: { syn: true, ack: true } }));
    box.packet(pkt("c", { seq: ISN, flags: { syn: true } }));
    box.packet(pkt("s", { seq: SSN, ack: ISN + 1, flags: { syn: true, ack: true } }));
    expect(box.packet(helloAt(ISN + 1)).pass).toBe(true);
    expect(judged).toEqual([]);
  });

  it("synPayload: a second SYN carrying data desynchronizes a box that reads it, not one that does not", () => {
    for (const [synPayload, evaded] of [[true, true], [false, false]] as const) {
      const { box } = boxWith({ synPayload });
      box.packet(pkt("c", { seq: ISN, flags: { syn: true } }));
      box.packet(pkt("c", { seq: ISN + 9999, flags: { syn: true }, payload: decoy }));
      box.packet(pkt("s", { seq: SSN, ack: ISN + 1, flags: { syn: true, ack: true } }));
      expect(box.packet(helloAt(ISN + 1)).pass, `synPayload ${synPayload}`).toBe(evaded);
    }
  });

  it("ttl: a decoy that expires before the server fools a box that ignores TTLs, not one that honours them", () => {
    for (const [ttl, evaded] of [["ignore", true], ["honour", false]] as const) {
      const { box } = boxWith({ ttl }, { type: "drop" }, 3);
      handshake(box);
      box.packet(pkt("c", { seq: ISN + 1, ack: SSN + 1, flags: { ack: true, psh: true }, payload: decoy, ttl: 2 }));
      expect(box.packet(helloAt(ISN + 1)).pass, ttl).toBe(evaded);
    }
  });

  it("sequence: a decoy with a bogus ACK fools a box that does not check, not one that does", () => {
    for (const [sequence, evaded] of [["ignore", true], ["validate", false]] as const) {
      const { box } = boxWith({ sequence });
      handshake(box);
      box.packet(pkt("c", { seq: ISN + 1, ack: 0xdeadbeef, flags: { ack: true, psh: true }, payload: decoy }));
      expect(box.packet(helloAt(ISN + 1)).pass, sequence).toBe(evaded);
    }
  });

  it("rst: injects a RST to each end and drops the trigger; past queuePackets a silent flow is let be", () => {
    const { box } = boxWith({}, { type: "rst" });
    handshake(box);
    const v = box.packet(helloAt(ISN + 1));
    expect(v.pass).toBe(false);
    const [toClient, toServer] = v.inject!.map((b) => parseTcp4(b)!);
    expect(toClient).toMatchObject({ src: S.ip, dst: C.ip, flags: { rst: true }, seq: SSN + 1, checksumOk: true });
    expect(toServer).toMatchObject({ src: C.ip, dst: S.ip, flags: { rst: true }, seq: ISN + 1 });
    const quiet = boxWith({ queuePackets: 3 });
    handshake(quiet.box);
    expect(quiet.box.packet(pkt("c", { seq: ISN + 1, ack: SSN + 1, flags: { ack: true } }))).toMatchObject({ pass: true, decided: "allow" });
    expect(quiet.box.size).toBe(0);
  });

  it("ports: a box that inspects 443 only lets other ports be", () => {
    const { box, judged } = boxWith({ ports: [443] });
    expect(box.packet(parseTcp4(buildTcp4({ src: C.ip, dst: S.ip, sport: 40001, dport: 8443, seq: 1, ack: 0, flags: { syn: true } }))!)).toMatchObject({ pass: true, decided: "allow" });
    expect(judged).toEqual([]);
  });
});

describe("taking a flow over (the verdicts that need the server's end: MITM, block pages, alerts, throttling)", () => {
  it("hands the datapath what TCP_REPAIR needs, steers the flow's later packets to it, and keeps the orphaned server's from the client", () => {
    const { box } = boxWith({}, { type: "mitm", ca: "lab", copySubject: true });
    box.canTakeOver = true;
    handshake(box);
    const v = box.packet(helloAt(ISN + 1));
    expect(v.pass).toBe(false); // the trigger is dropped: the new socket acknowledges it
    expect(v.takeover).toMatchObject({ client: C, server: S, sendSeq: SSN + 1, recvSeq: ISN + 1 + hello.length });
    expect(v.takeover!.first.equals(hello)).toBe(true);
    expect(v.takeover!.otherwise).toMatchObject({ pass: true, decided: "allow" }); // a MITM the kernel refuses: let through, reported
    expect(box.packet(pkt("c", { seq: ISN + 1 + hello.length, ack: SSN + 1, flags: { ack: true }, payload: decoy }))).toEqual({ pass: true, mark: TAKEOVER_MARK });
    expect(box.packet(pkt("s", { seq: SSN + 1, ack: ISN + 1, flags: { ack: true }, payload: decoy })).pass).toBe(false);
    box.untake(v.takeover!);
    expect(box.packet(pkt("c", { seq: ISN + 1, ack: SSN + 1, flags: { ack: true }, payload: decoy }))).toEqual({ pass: true });
  });

  it("only when the datapath can, only for those verdicts, and only after seeing the server's SYN/ACK", () => {
    const cases: [Verdict["action"], boolean, boolean][] = [
      [{ type: "blockpage", status: 408, headers: {}, body: "" }, true, true],
      [{ type: "throttle", rate: 1000 }, true, true],
      [{ type: "rst" }, true, false],
      [{ type: "drop" }, true, false],
      [{ type: "mitm", ca: "lab", copySubject: true }, false, false],
    ];
    for (const [action, can, taken] of cases) {
      const { box } = boxWith({}, action);
      box.canTakeOver = can;
      handshake(box);
      expect(!!box.packet(helloAt(ISN + 1)).takeover, action.type).toBe(taken);
    }
    const { box } = boxWith({ flowFrom: "any" }, { type: "mitm", ca: "lab", copySubject: true });
    box.canTakeOver = true;
    expect(box.packet(helloAt(ISN + 1)).takeover).toBeUndefined(); // no handshake seen: no sequence state to take over
  });

  it("reads the handshake's options from the SYNs (what the new socket must agree on)", () => {
    const syn = buildTcp4({ src: C.ip, dst: S.ip, sport: C.port, dport: S.port, seq: ISN, ack: 0, flags: { syn: true } });
    // MSS 1460, SACK permitted, timestamps, NOP, window scale 7: as Linux sends them.
    const opts = Buffer.from("020405b40402080a0000000100000000010303 07".replace(/ /g, ""), "hex");
    const withOpts = Buffer.concat([syn.subarray(0, 40), opts, Buffer.alloc(0)]);
    withOpts.writeUInt16BE(withOpts.length, 2);
    withOpts[32] = ((20 + opts.length) / 4) << 4;
    expect(parseTcp4(withOpts)!.options).toEqual({ mss: 1460, sackOk: true, ts: { val: 1, ecr: 0 }, wscale: 7 });
  });
});

describe("injected packets", () => {
  it("copy the IP TTL and IP ID of the end they impersonate, or follow the model's explicit values", () => {
    for (const [injected, toClient] of [
      [{ ttl: "copy", ipId: "copy" }, { ttl: 49, ipId: 778 }], // the server's SYN/ACK came in at TTL 50, IP ID 777
      [{ ttl: 64, ipId: "zero" }, { ttl: 64, ipId: 0 }],
    ] as const) {
      const { box } = boxWith({ injected }, { type: "rst" });
      box.packet(pkt("c", { seq: ISN, flags: { syn: true } }));
      box.packet(parseTcp4(buildTcp4({ src: S.ip, dst: C.ip, sport: S.port, dport: C.port, seq: SSN, ack: ISN + 1, flags: { syn: true, ack: true }, ttl: 50, ipId: 777 }))!);
      const v = box.packet(helloAt(ISN + 1));
      const rst = v.inject!.map((b) => parseTcp4(b)!).find((p) => p.dst === C.ip)!;
      expect({ ttl: rst.ttl, ipId: rst.ipId }).toEqual(toClient);
    }
  });
});
