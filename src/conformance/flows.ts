// Handshakes the conformance run sends by hand: a Tor client's 2012 ClientHello (the
// fingerprint the KazTransCom DPI keyed on) and an obfs-style flow (bytes that look random).
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { TOR_CIPHER_PREFIX } from "../dpi/classify.js";

/** A hand-built ClientHello: the given cipher suites and extensions, optional SNI. */
export function buildClientHello(opts: { ciphers: number[]; sni?: string; extensions?: [number, Buffer][] }): Buffer {
  const exts: Buffer[] = [];
  if (opts.sni) {
    const name = Buffer.from(opts.sni, "latin1");
    const entry = Buffer.concat([Buffer.from([0]), u16(name.length), name]);
    exts.push(Buffer.concat([u16(0), u16(entry.length + 2), u16(entry.length), entry]));
  }
  for (const [type, data] of opts.extensions ?? []) exts.push(Buffer.concat([u16(type), u16(data.length), data]));
  const extBlock = Buffer.concat(exts);
  const cs = Buffer.concat(opts.ciphers.map(u16));
  const body = Buffer.concat([
    u16(0x0301), Buffer.alloc(32, 7), Buffer.from([0]), u16(cs.length), cs, Buffer.from([1, 0]),
    ...(extBlock.length ? [u16(extBlock.length), extBlock] : []),
  ]);
  const hs = Buffer.concat([Buffer.from([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), u16(hs.length), hs]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}


/** A ClientHello with the Tor client's 2012 cipher list (classify.ts has its source). */
export function torHello(sni = "www.tor2012example.net"): Buffer {
  return buildClientHello({ ciphers: [...TOR_CIPHER_PREFIX, 0xc007, 0xc011, 0x0033, 0x0032, 0xc00c, 0xc00e, 0xc002, 0xc004, 0x0005, 0x0004, 0x002f, 0xfeff], sni });
}

/** What an obfs-style transport sends first: high-entropy bytes with no protocol to name. */
export function obfsBytes(n = 256): Buffer {
  return randomBytes(n);
}

/** Sends `first` and waits for the first answer: bytes, a reset/close, or silence. */
export function firstAnswer(s: Socket, first: Buffer, ms: number): Promise<"answered" | "reset" | "timeout"> {
  return new Promise((resolve) => {
    const done = (r: "answered" | "reset" | "timeout"): void => { clearTimeout(timer); s.destroy(); resolve(r); };
    const timer = setTimeout(() => done("timeout"), ms);
    s.once("data", () => done("answered"));
    s.once("error", () => done("reset"));
    s.once("end", () => done("reset"));
    s.resume();
    s.write(first);
  });
}
