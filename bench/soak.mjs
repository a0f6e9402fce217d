// Soak: a replay at speed under mixed load, for a long time (default 1 h; BENCH_SOAK_SECONDS),
// with the lab's memory sampled. The load (loopback only, bounded in rate and stopping by
// itself): DNS queries for ever-new names, TLS ClientHellos with ever-new server names
// through SOCKS5 (each a new certificate: the PKI's bound is what holds memory), HTTP
// requests, relay messages, event-stream readers that read and one that never reads, and
// trickling clients. Passes when the lab never crashed and its RSS in the last third of the
// run is within 20% of the second third (no growth beyond the bounds).
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { connect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { goal, median, mib, table } from "./lib.mjs";
import { encodeQuery } from "../dist/dns/wire.js";

const SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 3600);
const dir = mkdtempSync(join(tmpdir(), "chokepoint-soak-"));
const bin = new URL("../bin/chokepoint.js", import.meta.url).pathname;
const lab = spawn(process.execPath, [bin, "up", "--json", "--ports", "auto", "--profile", "kz-2019-qaznet-mitm", "--profile", "example-basics",
  "--from", "2019-07-18T08:00:00+06:00", "--speed", "600", "--events", join(dir, "events.jsonl"), "--events-max-size", "50M"],
  { env: { ...process.env, CHOKEPOINT_CONFDIR: join(dir, "conf"), NO_COLOR: "1" }, stdio: ["ignore", "pipe", "inherit"] });
let crashed = false;
lab.on("exit", (code, signal) => { if (!stopping) { crashed = true; console.error(`the lab exited (${code ?? signal}) during the soak`); } });
let stopping = false;
const ready = await new Promise((resolve, reject) => {
  let out = "";
  lab.stdout.on("data", (d) => {
    out += d;
    const nl = out.indexOf("\n");
    if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)));
  });
  lab.once("exit", () => reject(new Error("the lab did not start")));
});
const ep = ready.endpoints;
const counts = { dns: 0, tls: 0, http: 0, messages: 0, trickle: 0, errors: 0 };
let seq = 0;

/** RSS of the lab's helper processes (its children), from /proc. */
function helperRss(pid) {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
    return kids.reduce((sum, k) => sum + (rss(Number(k)) || 0), 0);
  } catch {
    return NaN;
  }
}

/** RSS of the lab's process, from /proc (its helpers apart: helperRss). */
function rss(pid) {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) * 1024;
  } catch {
    return NaN;
  }
}

// The load, each kind at a bounded rate.
const udp = createSocket("udp4");
udp.on("error", () => counts.errors++);
const timers = [];
const every = (ms, fn) => timers.push(setInterval(() => { try { fn(); } catch { counts.errors++; } }, ms));
every(2, () => { udp.send(encodeQuery(seq & 0xffff, `n${seq++}.soak.example`), ep.dns.port, "127.0.0.1"); counts.dns++; });
every(20, () => {
  // A new server name through SOCKS5: a new certificate for the lab to issue (or a MITM leaf).
  const name = seq % 3 ? `s${seq++}.soak.example` : "www.google.com";
  const s = connect(ep.socks.port, "127.0.0.1");
  s.on("error", () => counts.errors++);
  s.setTimeout(5000, () => s.destroy());
  s.once("connect", () => s.write(Buffer.from([5, 1, 0])));
  s.once("data", () => {
    s.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), Buffer.from(name), Buffer.from([1, 187])]));
    s.once("data", (d) => {
      if (d[1] !== 0) return s.destroy();
      const t = tlsConnect({ socket: s, servername: name, rejectUnauthorized: false });
      t.on("error", () => undefined);
      t.once("secureConnect", () => { counts.tls++; t.end("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); t.resume(); });
    });
  });
});
every(50, () => {
  const s = connect(ep.httpProxy.port, "127.0.0.1", () => s.write(`GET http://h${seq++}.soak.example/ HTTP/1.1\r\nHost: h.soak.example\r\nConnection: close\r\n\r\n`));
  s.on("error", () => counts.errors++);
  s.setTimeout(5000, () => s.destroy());
  s.on("data", () => undefined);
  s.on("end", () => counts.http++);
});
// Two relay subscribers messaging each other.
const relay = [connect(ep.relay.port, "127.0.0.1"), connect(ep.relay.port, "127.0.0.1")];
relay.forEach((s, i) => { s.on("error", () => counts.errors++); s.on("data", () => undefined); s.write(`${JSON.stringify({ type: "register", number: `+7700000000${i}`, network: "kazakhtelecom-megaline" })}\n`); });
every(10, () => { relay[0].write(`${JSON.stringify({ type: "send", id: `m${seq++}`, to: "+77000000001", text: "soak", via: "whatsapp" })}\n`); counts.messages++; });
// Event streams: one that reads everything, one that never reads (the lab must drop it, not grow).
const reader = await fetch(`http://127.0.0.1:${ep.control.port}/v1/events`);
(async () => { for await (const _ of reader.body) { /* read */ } })().catch(() => undefined);
const stuck = connect(ep.control.port, "127.0.0.1", () => stuck.write("GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
stuck.on("error", () => undefined);
stuck.pause();
// Tricklers: a byte every 2 s to DNS over TCP and the relay (the lab closes them after 10 s).
every(3000, () => {
  for (const port of [ep.dns.port, ep.relay.port]) {
    const s = connect(port, "127.0.0.1");
    s.on("error", () => undefined);
    const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write("\u0000")), 2000);
    s.on("close", () => { clearInterval(t); counts.trickle++; });
  }
});

const samples = [];
const t0 = Date.now();
console.log(`soak: ${SECONDS} s of mixed load against a replay at x600 (RSS every 10 s)`);
await new Promise((resolve) => {
  const sampler = setInterval(() => {
    const s = { t: Math.round((Date.now() - t0) / 1000), rss: rss(lab.pid), helpers: helperRss(lab.pid), ...counts };
    samples.push(s);
    if (samples.length % 30 === 0) console.log(`  ${s.t} s: RSS ${mib(s.rss)} (helpers ${mib(s.helpers)}), dns ${s.dns}, tls ${s.tls}, http ${s.http}, messages ${s.messages}`);
    if (crashed || Date.now() - t0 >= SECONDS * 1000) { clearInterval(sampler); resolve(); }
  }, 10_000);
});
stopping = true;
for (const t of timers) clearInterval(t);
udp.close();
relay.forEach((s) => s.destroy());
stuck.destroy();
lab.kill("SIGTERM");
await new Promise((r) => lab.once("exit", r));
const third = Math.max(1, Math.floor(samples.length / 3));
const mid = median(samples.slice(third, 2 * third).map((s) => s.rss));
const last = median(samples.slice(2 * third).map((s) => s.rss));
const peak = Math.max(...samples.map((s) => s.rss));
table([{ seconds: SECONDS, samples: samples.length, "RSS first": mib(samples[0]?.rss ?? NaN), "RSS mid-third": mib(mid), "RSS last-third": mib(last), "RSS peak": mib(peak), dns: counts.dns, tls: counts.tls, http: counts.http, messages: counts.messages, tricklers: counts.trickle }]);
goal("no crash", !crashed);
const ok = goal("no growth beyond the bounds (last third within 20% of the second)", last <= mid * 1.2, `${mib(mid)} -> ${mib(last)}`);
// The samples, for the record (BENCH_SOAK_OUT=FILE: one JSON object a line).
if (process.env.BENCH_SOAK_OUT) writeFileSync(process.env.BENCH_SOAK_OUT, samples.map((s) => JSON.stringify(s)).join("\n") + "\n");
rmSync(dir, { recursive: true, force: true });
process.exit(!crashed && ok ? 0 : 1);
