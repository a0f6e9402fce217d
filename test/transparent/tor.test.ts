// Tor through the 2012 box, in transparent mode: a real tor bridge (with obfs4proxy) in the
// world namespace, real tor clients in the client namespaces. Vanilla Tor's TLS handshake
// to the bridge dies on KazTransCom; the same bridge through obfs4 gets past the handshake.
// On both datapaths: the proxy (the profile's default: the 2012 record says nothing of
// packets) and the on-path box (forced), which must judge tor's real packets the same way.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, exited } from "../helpers/cli.js";
import { run } from "../helpers/tools.js";
import { preflight } from "../../src/transparent/topology.js";

const why = (await preflight()) ?? ((await run("sh", ["-c", "command -v tor && command -v obfs4proxy"])).code !== 0 ? "needs tor and obfs4proxy (Debian packages)" : undefined);
if (why) console.warn(`tor tests skipped: ${why}`);
const BRIDGE = "198.18.126.1"; // the world's service range: routed like the world, not sent to the origin

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await new Promise((r) => setTimeout(r, 200))) if (check()) return true;
  return check();
}

/** Runs a tor client in `ns` for up to `ms`; the highest bootstrap percentage it logged, and the line. */
function torClient(ns: string, bridgeArgs: string[], ms: number): Promise<{ percent: number; line: string }> {
  const dir = mkdtempSync(join(tmpdir(), "chokepoint-torc-"));
  const child = spawn("ip", ["netns", "exec", ns, "tor", "--DataDirectory", dir, "--SocksPort", "0", "--UseBridges", "1", "--Log", "notice stdout", ...bridgeArgs], { stdio: ["ignore", "pipe", "ignore"] });
  let best = { percent: -1, line: "" };
  let out = "";
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    for (const m of out.matchAll(/Bootstrapped (\d+)% \(([^)]+)\)[^\n]*/g)) if (Number(m[1]) > best.percent) best = { percent: Number(m[1]), line: m[0] };
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), ms);
    child.on("exit", () => { clearTimeout(timer); resolve(best); });
    // Past the TLS stage is all this test asks; stop early once there.
    const poll = setInterval(() => { if (best.percent >= 15) { clearInterval(poll); child.kill("SIGKILL"); } }, 200);
    child.on("exit", () => clearInterval(poll));
  });
}

describe.skipIf(!!why).each(["proxy", "onpath"])("tor and obfs4 against the 2012 DPI (transparent mode, %s datapath, root)", (datapath) => {
  let lab: ChildProcess | undefined;
  let bridge: ChildProcess | undefined;
  let namespaces: Record<string, string> = {};
  let fingerprint = "";
  let obfs4Line = "";

  beforeAll(async () => {
    await run(process.execPath, [BIN, "down"]);
    lab = spawn(process.execPath, [BIN, "up", "--transparent", "--json", "--profile", "kz-2012-tor-dpi", "--at", "2012-03-15T12:00:00+06:00", "--datapath", datapath], { stdio: ["ignore", "pipe", "inherit"] });
    namespaces = await new Promise((resolve, reject) => {
      let out = "";
      lab!.stdout!.on("data", (d: Buffer) => { out += d.toString(); const nl = out.indexOf("\n"); if (nl >= 0) {
        const ready = JSON.parse(out.slice(0, nl)) as { namespaces: Record<string, string>; datapath: string };
        expect(ready.datapath).toBe(datapath);
        resolve(ready.namespaces);
      } });
      lab!.once("exit", (c) => reject(new Error(`up exited ${c}`)));
    });
    // A bridge with an obfs4 transport, in the world namespace.
    const dir = mkdtempSync(join(tmpdir(), "chokepoint-bridge-"));
    bridge = spawn("ip", ["netns", "exec", "chokepoint-world", "tor", "--DataDirectory", dir, "--SocksPort", "0", "--BridgeRelay", "1",
      "--ORPort", `${BRIDGE}:443`, "--Address", BRIDGE, "--AssumeReachable", "1", "--PublishServerDescriptor", "0",
      "--ServerTransportPlugin", "obfs4 exec /usr/bin/obfs4proxy", "--ServerTransportListenAddr", `obfs4 ${BRIDGE}:8443`,
      "--ExtORPort", "auto", "--Nickname", "chokepointlab", "--ContactInfo", "lab@example.invalid", "--Log", "notice stdout"], { stdio: ["ignore", "ignore", "ignore"] });
    const lineFile = join(dir, "pt_state", "obfs4_bridgeline.txt");
    expect(await waitFor(() => existsSync(join(dir, "fingerprint")) && existsSync(lineFile), 30_000)).toBe(true);
    fingerprint = readFileSync(join(dir, "fingerprint"), "utf8").trim().split(/\s+/)[1]!;
    const cert = /cert=(\S+)/.exec(readFileSync(lineFile, "utf8"))![1]!;
    obfs4Line = `obfs4 ${BRIDGE}:8443 ${fingerprint} cert=${cert} iat-mode=0`;
  }, 60_000);

  afterAll(async () => {
    bridge?.kill("SIGKILL");
    if (lab && lab.exitCode === null) { lab.kill("SIGTERM"); await exited(lab); }
    await run(process.execPath, [BIN, "down"]);
  });

  it("vanilla Tor's TLS handshake to the bridge is blocked on KazTransCom, and passes on another network", async () => {
    const vanilla = ["--Bridge", `${BRIDGE}:443 ${fingerprint}`];
    const blocked = await torClient(namespaces.kaztranscom!, vanilla, 20_000);
    // TCP connects (10%: conn_done); the handshake never completes (15%: handshake_done).
    expect(blocked.percent).toBeGreaterThanOrEqual(5);
    expect(blocked.percent).toBeLessThan(15);
    const elsewhere = await torClient(namespaces["kazakhtelecom-megaline"]!, vanilla, 30_000);
    expect(elsewhere.percent, elsewhere.line).toBeGreaterThanOrEqual(15);
  }, 60_000);

  it("the same bridge through obfs4 gets past the handshake on KazTransCom", async () => {
    const r = await torClient(namespaces.kaztranscom!, ["--ClientTransportPlugin", "obfs4 exec /usr/bin/obfs4proxy", "--Bridge", obfs4Line], 30_000);
    expect(r.percent, r.line).toBeGreaterThanOrEqual(15);
  }, 60_000);
});
