// Gateway mode (what the Docker image runs) without Docker: the lab runs in a namespace of
// its own that is the default gateway of a client namespace, as a container with NET_ADMIN
// is the gateway of its Docker network. Root only.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, ROOT, exited } from "../helpers/cli.js";
import { run } from "../helpers/tools.js";
import { preflight } from "../../src/transparent/topology.js";

const why = await preflight();
if (why) console.warn(`gateway-mode tests skipped: ${why}`);
const whyOnPath = why ?? ((await run("iptables", ["-V"])).code !== 0 ? "no iptables" : undefined)
  ?? ((await run("/usr/bin/python3", ["-c", "import scapy"])).code !== 0 ? "no python3-scapy (apt-get install python3-scapy)" : undefined);
const LAB = "cpgw-lab", CLIENT = "cpgw-client";
const CA = join(process.env.CHOKEPOINT_CONFDIR!, "ca", "lab.pem");
const PY = join(ROOT, "scripts", "evasion.py");
const inClient = (script: string, timeoutMs = 30_000) => run("ip", ["netns", "exec", CLIENT, "sh", "-c", script], { timeoutMs });

async function removeNamespaces(): Promise<void> {
  for (const ns of [LAB, CLIENT]) await run("ip", ["netns", "delete", ns]);
}

/** Two namespaces as a container and its client on one Docker network, and the lab in the first as `up --gateway`; resolves with its ready line. */
async function gatewayLab(args: string[]): Promise<{ lab: ChildProcess; ready: Record<string, unknown> }> {
  await removeNamespaces();
  const steps = [
    ["netns", "add", LAB], ["netns", "add", CLIENT],
    ["link", "add", "cpgw0", "netns", LAB, "type", "veth", "peer", "name", "cpgw1", "netns", CLIENT],
    ["-n", LAB, "addr", "add", "198.18.192.2/24", "dev", "cpgw0"], ["-n", CLIENT, "addr", "add", "198.18.192.10/24", "dev", "cpgw1"],
    ["-n", LAB, "link", "set", "cpgw0", "up"], ["-n", CLIENT, "link", "set", "cpgw1", "up"],
    ["-n", LAB, "link", "set", "lo", "up"], ["-n", CLIENT, "link", "set", "lo", "up"],
    ["-n", CLIENT, "route", "add", "default", "via", "198.18.192.2"],
  ];
  for (const s of steps) {
    const r = await run("ip", s);
    if (r.code !== 0) throw new Error(`ip ${s.join(" ")}: ${r.stderr}`);
  }
  const lab = spawn("ip", ["netns", "exec", LAB, process.execPath, BIN, "up", "--json", "--gateway", "198.18.192.0/24", "--listen", "0.0.0.0", "--ports", "auto", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let err = "", out = "";
    lab.stdout!.on("data", (d: Buffer) => { out += d.toString(); if (out.includes("\n")) resolve(JSON.parse(out.slice(0, out.indexOf("\n"))) as Record<string, unknown>); });
    lab.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    lab.once("exit", (code) => reject(new Error(`the lab exited (${code}): ${err}`)));
  });
  return { lab, ready };
}

describe.skipIf(!!why)("gateway mode (root; the Docker image's mode, in namespaces)", () => {
  let lab: ChildProcess;
  const events = join(mkdtempSync(join(tmpdir(), "chokepoint-gw-")), "events.jsonl");

  beforeAll(async () => {
    ({ lab } = await gatewayLab(["--profile", "kz-2011-wordpress", "--at", "2011-07-01", "--events", events]));
  });
  afterAll(async () => {
    if (lab && lab.exitCode === null) { lab.kill("SIGKILL"); await exited(lab); }
    await removeNamespaces();
  });

  it("DNS to any address is the censor's; the blog's SYN is dropped in the kernel; www loads over HTTPS", async () => {
    const r = await inClient([
      "dig +short +time=2 +tries=1 www.wordpress.com @9.9.9.9",
      `curl -s -o /dev/null -m 5 -w 'www %{http_code}\\n' --cacert ${CA} https://www.wordpress.com/`,
      "curl -sv -m 3 http://someblog.wordpress.com/ 2>&1 | grep -c 'Connected to'; curl -s -m 3 http://someblog.wordpress.com/ >/dev/null; echo blog=$?",
    ].join("; "));
    expect(r.stdout.split("\n").filter(Boolean)).toEqual(["198.18.51.10", "www 200", "0", "blog=28"]);
  });

  it("records the kernel's drops in the event log, with the rule and its seed", async () => {
    let drop: Record<string, unknown> | undefined;
    for (let i = 0; i < 20 && !drop; i++) {
      await new Promise((r) => setTimeout(r, 250));
      drop = readFileSync(events, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((e) => (e.detail as { enforcedBy?: string } | undefined)?.enforcedBy === "kernel");
    }
    expect(drop).toMatchObject({ component: "interceptor", action: "drop", rule: "blog-addresses", seed: "kz-2011-06-wordpress", client: "198.18.192.10", network: "kazakhtelecom-megaline" });
  });

  it("fails closed: what neither the world nor a service subnet serves is refused; nothing is forwarded", async () => {
    const r = await inClient("curl -s -m 3 http://198.18.99.99/; echo tcp=$?; ping -c 1 -W 1 198.18.99.99 >/dev/null 2>&1; echo icmp=$?");
    // Refused before or after the handshake: curl says 7 (refused), 28 (timed out), or, when the
    // interceptor accepted and then reset, 52/55/56 depending on whether the reset came before,
    // during or after curl's send. Never 0: nothing answered.
    expect(r.stdout).toMatch(/tcp=(7|28|52|55|56)\n/);
    expect(r.stdout).toContain("icmp=1");
  });

  it("SIGTERM removes the lab's nft table and routing rule, and nothing else", async () => {
    lab.kill("SIGTERM");
    expect(await exited(lab)).toBe(0);
    expect((await run("ip", ["netns", "exec", LAB, "nft", "list", "tables"])).stdout).not.toContain("chokepoint");
    expect((await run("ip", ["-n", LAB, "rule"])).stdout).not.toContain("fwmark");
    expect((await run("ip", ["-n", LAB, "addr", "show", "cpgw0"])).stdout).toContain("198.18.192.2/24");
  });
});

describe.skipIf(!!whyOnPath)("gateway mode on the on-path datapath (root; the Docker image with a box profile)", () => {
  let lab: ChildProcess;
  let ready: Record<string, unknown>;
  const events = join(mkdtempSync(join(tmpdir(), "chokepoint-gwo-")), "events.jsonl");
  let port = 42000;
  const world = "$(dig +short www.facebook.com @198.18.77.77)";

  beforeAll(async () => {
    // The 2019 Qaznet box: the profile's default datapath is on the path, as in the namespaces.
    ({ lab, ready } = await gatewayLab(["--profile", "kz-2019-qaznet-mitm", "--at", "2019-07-20T12:00", "--events", events]));
    // Scapy speaks TCP by hand: the client's kernel must not answer the server's packets with RSTs.
    await run("ip", ["netns", "exec", CLIENT, "iptables", "-A", "OUTPUT", "-p", "tcp", "--tcp-flags", "RST", "RST", "-j", "DROP"]);
  }, 60_000);
  afterAll(async () => {
    if (lab && lab.exitCode === null) { lab.kill("SIGTERM"); await exited(lab); }
    await removeNamespaces();
  });

  it("says it runs on the path; curl gets the world's page from the origin behind the box", async () => {
    expect(ready.datapath).toBe("onpath");
    const r = await inClient(`curl -s -o /dev/null -m 5 -w 'www %{http_code}\\n' --cacert ${CA} https://www.example.kz/`);
    expect(r.stdout).toContain("www 200");
  });

  it("the box intercepts a plain ClientHello and is evaded by what CCS 2019 reports: insertion, TTL-limited decoy, turnaround, SYN payload", async () => {
    const out: string[] = [];
    for (const mode of ["plain", "badsum", "ttl", "turnaround", "synpayload"]) {
      const r = await inClient(`/usr/bin/python3 ${PY} ${world} ${++port} ${mode} sni:www.facebook.com`, 20_000);
      out.push(`${mode}: ${r.stdout.trim()}`);
    }
    expect(out).toEqual([
      "plain: answered issuer=Security Certificate", // the 2019 chain's intermediate: the box took the flow over
      "badsum: answered issuer=chokepoint lab CA", // the world's origin answers: the box never judged the real ClientHello
      // The decoy (TTL 3) reaches the box (2 routers before it) and expires before the server
      // (3 more): the origin never sees it, and answers the real ClientHello.
      "ttl: answered issuer=chokepoint lab CA",
      "turnaround: answered issuer=chokepoint lab CA",
      "synpayload: answered issuer=chokepoint lab CA",
    ]);
    const decisions = readFileSync(events, "utf8").split("\n").filter((l) => l.includes('"component":"box"') && l.includes('"action":"mitm"'));
    expect(decisions.length).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it("a ClientHello whose TTL expires before the box is never judged, and never answered", async () => {
    const hello = (await import("../../src/conformance/flows.js")).buildClientHello({ ciphers: [0xc02f], sni: "www.facebook.com" }).toString("hex");
    // A handshake, then the hello with TTL 2 (2 routers before the box): lost on the way.
    const r = await inClient(`/usr/bin/python3 -c '
import sys
from scapy.all import IP, TCP, Raw, AsyncSniffer, conf, send, sr1
conf.verb = 0
dst, sport = sys.argv[1], int(sys.argv[2])
sa = sr1(IP(dst=dst) / TCP(sport=sport, dport=443, flags="S", seq=1000), timeout=3)
sn = AsyncSniffer(filter=f"tcp and src port 443 and dst port {sport}", timeout=2)
sn.start()
send(IP(dst=dst, ttl=2) / TCP(sport=sport, dport=443, flags="PA", seq=1001, ack=sa[TCP].seq + 1) / Raw(bytes.fromhex(sys.argv[3])))
sn.join()
print("answered" if any(p.haslayer(Raw) for p in sn.results) else "silence")
' ${world} ${++port} ${hello}`, 20_000);
    expect(r.stdout.trim()).toBe("silence");
  }, 30_000);

  it("SIGTERM removes the box's rules, its queue rules and the routing rule", async () => {
    lab.kill("SIGTERM");
    expect(await exited(lab)).toBe(0);
    expect((await run("ip", ["netns", "exec", LAB, "nft", "list", "tables"])).stdout).not.toContain("chokepoint");
    expect((await run("ip", ["netns", "exec", LAB, "iptables", "-t", "mangle", "-S"])).stdout).not.toContain("NFQUEUE");
    expect((await run("ip", ["-n", LAB, "rule"])).stdout).not.toContain("fwmark");
  });
});
