// Our DNS codec, checked against an independent one (dns-packet, a test-only dependency).
import { describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { RCODE, encodeResponse, parseQuery } from "../../src/dns/wire.js";

const query = (name: string, type = "A", opts: { edns?: boolean; id?: number } = {}): Buffer =>
  dnsPacket.encode({
    type: "query", id: opts.id ?? 4242, flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: "IN" } as dnsPacket.Question],
    ...(opts.edns ? { additionals: [{ type: "OPT", name: ".", udpPayloadSize: 4096, flags: dnsPacket.DNSSEC_OK } as unknown as dnsPacket.Answer] } : {}),
  } as dnsPacket.Packet);

describe("DNS wire codec", () => {
  it("parses a query: id, name with its case, type, EDNS", () => {
    const p = parseQuery(query("WwW.Example.ORG", "AAAA", { edns: true, id: 7 }));
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(p.query).toMatchObject({ id: 7, name: "WwW.Example.ORG", qtype: 28, qclass: 1, rd: true, edns: { udpSize: 4096, version: 0, do: true } });
  });

  it("encodes answers that an independent decoder reads back, with compression and OPT", () => {
    const p = parseQuery(query("a.Example.org", "ANY", { edns: true }));
    if (!p.ok) throw new Error("parse");
    const out = encodeResponse(p.query, { rcode: RCODE.NOERROR, answers: [
      { type: "A", address: "198.19.1.2", ttl: 300 }, { type: "AAAA", address: "2001:db8:19::1:2", ttl: 300 },
      { type: "AAAA", address: "::ffff:198.18.0.1", ttl: 60 },
    ] });
    const d = dnsPacket.decode(out);
    expect(d.id).toBe(4242);
    expect(d.type).toBe("response");
    expect(d.questions![0]!.name).toBe("a.Example.org");
    expect(d.answers!.map((a) => [a.type, (a as { data: unknown }).data, (a as { ttl: number }).ttl])).toEqual([["A", "198.19.1.2", 300], ["AAAA", "2001:db8:19::1:2", 300], ["AAAA", "::ffff:c612:1", 60]]);
    const opt = d.additionals!.find((a) => a.type === "OPT") as unknown as { udpPayloadSize: number; flags: number };
    expect(opt.udpPayloadSize).toBe(1232);
    expect(opt.flags & dnsPacket.DNSSEC_OK).toBeTruthy();
    // name compression: each answer names the question by a 2-byte pointer
    expect(out.length).toBe(12 + 15 + 4 + (12 + 4) + 2 * (12 + 16) + 11);
  });

  it("sends no OPT without EDNS, and truncates what does not fit", () => {
    const p = parseQuery(query("big.example"));
    if (!p.ok) throw new Error("parse");
    const answers = Array.from({ length: 40 }, (_, i) => ({ type: "A" as const, address: `198.18.0.${i}`, ttl: 60 }));
    const out = encodeResponse(p.query, { rcode: 0, answers }, 512);
    const d = dnsPacket.decode(out);
    expect(d.flag_tc).toBe(true);
    expect(d.answers).toHaveLength(0);
    expect(d.additionals).toHaveLength(0);
    expect(encodeResponse(p.query, { rcode: 0, answers }, 65535).length).toBeGreaterThan(512);
  });

  it("rejects what a real server rejects", () => {
    const base = query("x.example");
    expect(parseQuery(base.subarray(0, 11))).toMatchObject({ ok: false, drop: true });
    const response = Buffer.from(base); response[2]! |= 0x80;
    expect(parseQuery(response)).toMatchObject({ ok: false, drop: true });
    const notify = Buffer.from(base); notify[2] = (notify[2]! & 0x87) | (4 << 3);
    expect(parseQuery(notify)).toMatchObject({ ok: false, rcode: RCODE.NOTIMP, id: 4242 });
    const zero = Buffer.from(base); zero.writeUInt16BE(0, 4);
    expect(parseQuery(zero)).toMatchObject({ ok: false, rcode: RCODE.FORMERR });
    const two = Buffer.from(base); two.writeUInt16BE(2, 4);
    expect(parseQuery(two)).toMatchObject({ ok: false, rcode: RCODE.FORMERR });
    const loop = Buffer.concat([base.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
    expect(parseQuery(loop)).toMatchObject({ ok: false, rcode: RCODE.FORMERR, reason: /pointer/ });
    const longLabel = Buffer.concat([base.subarray(0, 12), Buffer.from([64]), Buffer.alloc(64, 97), Buffer.from([0, 0, 1, 0, 1])]);
    expect(parseQuery(longLabel)).toMatchObject({ ok: false, rcode: RCODE.FORMERR });
    expect(parseQuery(base.subarray(0, base.length - 2))).toMatchObject({ ok: false, rcode: RCODE.FORMERR });
    const v1 = parseQuery(query("x.example", "A", { edns: true }));
    expect(v1.ok).toBe(true);
    const e = query("x.example", "A", { edns: true }); e[e.length - 5] = 1; // EDNS version 1
    expect(parseQuery(e)).toMatchObject({ ok: false, rcode: RCODE.BADVERS });
  });
});
