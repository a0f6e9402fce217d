// Gateway mode (what the Docker image runs) without Docker: the lab runs in a namespace of
// its own that is the default gateway of a client namespace, as a container with NET_ADMIN
// is the gateway of its Docker network. Root only.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, exited } from "../helpers/cli.js";
import { run } from "../helpers/tools.js";
import { preflight } from "../../src/transparent/topology.js";

const why = await preflight();
if (why) console.warn(`gateway-mode tests skipped: ${why}`);
const LAB = "cpgw-lab", CLIENT = "cpgw-client";
const CA = join(process.env.CHOKEPOINT_CONFDIR!, "ca", "lab.pem");
const inClient = (script: string) => run("ip", ["netns", "exec", CLIENT, "sh", "-c", script], { timeoutMs: 30_000 });

async function removeNamespaces(): Promise<void> {
  for (const ns of [LAB, CLIENT]) await run("ip", ["netns", "delete", ns]);
}

describe.skipIf(!!why)("gateway mode (root; the Docker image's mode, in namespaces)", () => {
  let lab: ChildProcess;
  const events = join(mkdtempSync(join(tmpdir(), "chokepoint-gw-")), "events.jsonl");

  beforeAll(async () => {
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
    lab = spawn("ip", ["netns", "exec", LAB, process.execPath, BIN, "up", "--json", "--gateway", "198.18.192.0/24",
      "--profile", "kz-2011-wordpress", "--at", "2011-07-01", "--listen", "0.0.0.0", "--ports", "auto", "--events", events], { stdio: ["ignore", "pipe", "pipe"] });
    await new Promise<void>((resolve, reject) => {
      let err = "";
      lab.stdout!.once("data", () => resolve());
      lab.stderr!.on("data", (d: Buffer) => (err += d.toString()));
      lab.once("exit", (code) => reject(new Error(`the lab exited (${code}): ${err}`)));
    });
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
