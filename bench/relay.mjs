// Relay: messages per second and delivery latency through the lab's relay (the 2014 Almaty
// profile, outside its outage, so both legs of every message are judged and allowed), with
// and without a throttle rule, against two baselines measured in the same run: a plain TCP
// echo (each message line comes back to its sender) and a bare JSON-lines forwarder (the
// relay's frames: register, send -> ack, message, receipt; no policy, no events). Each runs
// as its own process; the load comes from this one: PAIRS sender/recipient pairs over TCP,
// each sender keeping WINDOW messages in flight, for SECONDS, in RUNS alternating rounds.
// Latency: send -> arrival at the recipient (echo: back at the sender), at 500 messages/s.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:net";
import { goal, median, percentile, table } from "./lib.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const PAIRS = 20;
const WINDOW = 50;

const BASELINE = `
const net = require("node:net");
const numbers = new Map();
net.createServer((s) => {
  s.setEncoding("utf8");
  let buf = "", me;
  const out = (f) => s.write(JSON.stringify(f) + "\\n");
  s.on("data", (c) => {
    buf += c;
    for (let nl = buf.indexOf("\\n"); nl >= 0; nl = buf.indexOf("\\n")) {
      const f = JSON.parse(buf.slice(0, nl)); buf = buf.slice(nl + 1);
      if (f.type === "register") { me = f.number; numbers.set(me, s); out({ type: "registered", number: me, network: f.network }); }
      else if (f.type === "send") {
        out({ type: "ack", id: f.id, status: "accepted" });
        const to = numbers.get(f.to);
        if (to) { to.write(JSON.stringify({ type: "message", id: f.id, from: me, to: f.to, via: f.via, text: f.text, sentAt: new Date().toISOString() }) + "\\n");
          out({ type: "receipt", id: f.id, to: f.to, status: "delivered", at: new Date().toISOString() }); }
      }
    }
  });
  s.on("error", () => s.destroy());
}).listen(0, "127.0.0.1", function () { console.log(JSON.stringify({ ready: true, endpoints: { relay: this.address() } })); });
`;

const ECHO = `
require("node:net").createServer((s) => { s.setNoDelay(true); s.pipe(s); s.on("error", () => s.destroy()); })
  .listen(0, "127.0.0.1", function () { console.log(JSON.stringify({ ready: true, endpoints: { relay: this.address() } })); });
`;

// The throttle: every WhatsApp message waits 100 ms and a sender's messages leave at 32 KiB/s
// (about 400 of this bench's messages a second per sender).
const THROTTLE_DELAY_MS = 100, THROTTLE_RATE = 32 * 1024;
const dir = mkdtempSync(join(tmpdir(), "chokepoint-bench-relay-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, "throttled.yaml"), `id: bench-throttle\ntitle: bench\ncountry: ZZ\ntimezone: UTC\nperiod: { start: "2000-01-01" }\nnetworks: [kcell-almaty-mobile]\nrules:\n  - { id: slow, match: { service: whatsapp }, action: { throttle: { delay: ${THROTTLE_DELAY_MS}ms, rate: ${THROTTLE_RATE} } } }\n`);

function startServer(name, args) {
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, CHOKEPOINT_CONFDIR: process.env.CHOKEPOINT_CONFDIR ?? `/tmp/chokepoint-bench-relay-${process.pid}` } });
  process.on("exit", () => child.kill("SIGKILL"));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 60 s`)), 60_000);
    child.stdout.on("data", (d) => {
      out += d;
      const line = out.split("\n").find((l) => l.startsWith('{"ready"'));
      if (line) { clearTimeout(timer); resolve({ child, port: JSON.parse(line).endpoints.relay.port }); }
    });
    child.on("exit", (code) => reject(new Error(`${name} exited (${code})`)));
  });
}

/** A client speaking JSON lines; calls onFrame for each frame. */
function client(port, onFrame) {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1", () => resolve(s));
    s.setNoDelay(true);
    s.setEncoding("utf8");
    let buf = "";
    s.on("data", (c) => {
      buf += c;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        onFrame(JSON.parse(line));
      }
    });
  });
}

const NET = "kcell-almaty-mobile";
let round = 0;

/** PAIRS pairs; every sender keeps WINDOW messages in flight; returns receipts per second. */
async function throughput(port, echo = false) {
  round++;
  let receipts = 0, stop = false;
  const sockets = [];
  const senders = [];
  for (let i = 0; i < PAIRS; i++) {
    const rnum = `+7701${round}${String(i).padStart(4, "0")}`, snum = `+7702${round}${String(i).padStart(4, "0")}`;
    const r = await client(port, () => undefined);
    r.write(JSON.stringify({ type: "register", number: rnum, network: NET }) + "\n");
    let seq = 0;
    const send = (s) => s.write(JSON.stringify({ type: "send", id: `m${++seq}`, to: rnum, text: "x".repeat(64), via: "whatsapp" }) + "\n");
    const s = await client(port, (f) => {
      if (f.type === (echo ? "send" : "receipt")) { receipts++; if (!stop) send(s); }
    });
    s.write(JSON.stringify({ type: "register", number: snum, network: NET }) + "\n");
    sockets.push(r, s);
    senders.push(() => { for (let k = 0; k < WINDOW; k++) send(s); });
  }
  await new Promise((res) => setTimeout(res, 200));
  const t0 = performance.now();
  senders.forEach((go) => go());
  await new Promise((res) => setTimeout(res, SECONDS * 1000));
  const rate = receipts / ((performance.now() - t0) / 1000);
  stop = true;
  await new Promise((res) => setTimeout(res, 300));
  sockets.forEach((s) => s.destroy());
  return rate;
}

/** One pair, a fixed 500 messages/s for 3 s: send -> arrival latencies in ms. */
async function latency(port, echo = false, via = "sms") {
  round++;
  const sentAt = new Map(), lat = [];
  const rnum = `+7703${round}0001`, snum = `+7703${round}0002`;
  const r = await client(port, (f) => { if (f.type === "message") lat.push(performance.now() - sentAt.get(f.text)); });
  r.write(JSON.stringify({ type: "register", number: rnum, network: NET }) + "\n");
  const s = await client(port, (f) => { if (echo && f.type === "send") lat.push(performance.now() - sentAt.get(f.text)); });
  s.write(JSON.stringify({ type: "register", number: snum, network: NET }) + "\n");
  await new Promise((res) => setTimeout(res, 200));
  for (let i = 0; i < 1500; i++) {
    sentAt.set(`t${i}`, performance.now());
    s.write(JSON.stringify({ type: "send", id: `l${i}`, to: rnum, text: `t${i}`, via }) + "\n");
    if (i % 10 === 9) await new Promise((res) => setTimeout(res, 20));
  }
  await new Promise((res) => setTimeout(res, 1000));
  r.destroy(); s.destroy();
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), n: lat.length };
}

const flags = process.env.BENCH_NODE_FLAGS ? process.env.BENCH_NODE_FLAGS.split(" ") : [];
const lab = await startServer("chokepoint", [...flags, "bin/chokepoint.js", "up", "--profile", "kz-2014-02-13-almaty-messaging", "--at", "2014-02-13T12:00:00+06:00", "--ports", "auto", "--json"]);
const slow = await startServer("chokepoint (throttle)", ["bin/chokepoint.js", "up", "--profile", join(dir, "throttled.yaml"), "--ports", "auto", "--json"]);
const echo = await startServer("echo", ["-e", ECHO]);
const base = await startServer("forwarder", ["-e", BASELINE]);
const servers = [
  { name: "chokepoint relay", port: lab.port, echo: false },
  { name: `relay, throttle ${THROTTLE_DELAY_MS} ms + ${THROTTLE_RATE / 1024} KiB/s`, port: slow.port, echo: false, via: "whatsapp" },
  { name: "plain TCP echo", port: echo.port, echo: true },
  { name: "bare JSON-lines forwarder", port: base.port, echo: false },
];
console.log(`${PAIRS} sender/recipient pairs over TCP, ${WINDOW} messages in flight each, ${SECONDS} s a round, ${RUNS} rounds; every relay message judged on both legs`);
for (const sv of servers) await throughput(sv.port, sv.echo); // warm-up
const runs = servers.map(() => []);
for (let i = 0; i < RUNS; i++) for (const [k, sv] of servers.entries()) runs[k].push(await throughput(sv.port, sv.echo));
const lats = [];
for (const sv of servers) lats.push(await latency(sv.port, sv.echo, sv.via ?? "sms"));
table(servers.map((sv, k) => ({
  server: sv.name, "messages/s": Math.round(median(runs[k])).toLocaleString("en"), runs: runs[k].map(Math.round).join(" "),
  "p50 @500/s": `${lats[k].p50.toFixed(2)} ms`, "p99 @500/s": `${lats[k].p99.toFixed(2)} ms`, delivered: `${lats[k].n}/1500`,
})));
const ratio = (a, b) => median(runs[a].map((x, i) => x / runs[b][i]));
const vsEcho = ratio(0, 2), vsForwarder = ratio(0, 3);
console.log(`ratios: relay/echo ${vsEcho.toFixed(2)}, relay/forwarder ${vsForwarder.toFixed(2)}`);
goal("relay at least 0.25 of a plain TCP echo's messages/s", vsEcho >= 0.25, vsEcho.toFixed(2));
goal("relay at least 0.5 of a bare JSON-lines forwarder's messages/s", vsForwarder >= 0.5, vsForwarder.toFixed(2));
goal("every message delivered at 500/s", lats[0].n === 1500, `${lats[0].n}/1500`);
const cap = (PAIRS * THROTTLE_RATE) / 64;
goal(`throttle holds: at most ${Math.round(cap).toLocaleString("en")} messages/s (${PAIRS} senders x ${THROTTLE_RATE / 1024} KiB/s / 64 B)`, median(runs[1]) <= cap * 1.05, Math.round(median(runs[1])).toLocaleString("en"));
goal(`throttle delay: p50 latency at least ${THROTTLE_DELAY_MS} ms`, lats[1].p50 >= THROTTLE_DELAY_MS, `${lats[1].p50.toFixed(1)} ms`);
for (const p of [echo, base]) p.child.kill("SIGKILL");
for (const p of [lab, slow]) p.child.kill("SIGTERM");
await Promise.all([lab, slow].map((p) => new Promise((res) => p.child.once("exit", res))));
process.exit(0);
