// A transparent-mode session: builds the topology for the chosen profiles' networks, starts
// the lab inside the censor namespace (`chokepoint up --transparent-plan`), and takes it all
// down again. Used by `chokepoint exec` and `chokepoint up --transparent`.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { selectProfiles, zoneFor } from "../profile/select.js";
import { buildWorld } from "../world/build.js";
import { toInstant } from "../util/time.js";
import { CENSOR_NS, down, loadRuleset, plan, preflight, up, type Plan } from "./topology.js";
import { boxDnsAddress, chooseDatapath, onPathRuleset, residualSeconds, upOnPath } from "./onpath.js";
import { DEFAULT_BOX } from "../profile/box-model.js";

const BIN = fileURLToPath(new URL("../../bin/chokepoint.js", import.meta.url));

export interface SessionOptions {
  profiles: string[];
  country?: string;
  at?: string;
  from?: string;
  speed?: string;
  variant?: string;
  network?: string;
  confdir?: string;
  events?: string;
  /**
   * proxy: TCP terminated by the interceptor; onpath: packets forwarded through router hops
   * and the box. Default: onpath for a profile with a box model (`dpi.box`), else proxy.
   */
  datapath?: "proxy" | "onpath";
}

export interface Session {
  plan: Plan;
  /** The datapath the session runs (asked, or the profile's default). */
  datapath: "proxy" | "onpath";
  /** The network a command runs on when none is named. */
  network: string;
  /** The lab's control API on a unix socket: commands in the namespaces reach it through the file system (no route to the censor's loopback). */
  controlSocket: string;
  /** A resolver address for a network's clients: where the lab's resolver for that network answers them (any address on port 53 is taken there too). */
  resolverOf(network: string): string;
  ready: { endpoints: Record<string, unknown> };
  /** The namespace of a network's clients. */
  namespaceOf(network: string): string;
  /** Moves the lab's clock (and clears its residual table). */
  seek(at: string): Promise<void>;
  stop(): Promise<void>;
}

/** The `up` arguments that choose the regime, for the lab inside the censor namespace. */
function upArgs(o: SessionOptions): string[] {
  const a: string[] = [];
  for (const p of o.profiles) a.push("--profile", p);
  const pairs: [string, string | undefined][] = [["--country", o.country], ["--at", o.at], ["--from", o.from], ["--speed", o.speed],
    ["--variant", o.variant], ["--network", o.network], ["--confdir", o.confdir], ["--events", o.events]];
  for (const [k, v] of pairs) if (v !== undefined) a.push(k, v);
  return a;
}

export async function startSession(o: SessionOptions): Promise<Session> {
  const why = await preflight();
  if (why) throw new Error(why);
  const zone = zoneFor(o.profiles, o.country);
  const at = toInstant(o.at, "at", zone) ?? toInstant(o.from, "from", zone);
  const { profiles } = selectProfiles({
    refs: o.profiles,
    ...(o.country ? { country: o.country, at: at ?? Date.now(), ...(o.at === undefined && o.from !== undefined ? { onward: true } : {}) } : {}),
    ...(o.variant ? { variant: o.variant } : {}),
  });
  if (!profiles.length) throw new Error("name a regime: --profile ID (chokepoint list shows them) or --country CC --at DATE");
  const datapath = await chooseDatapath(o.datapath, profiles.some((x) => x.dpi.box));
  const known = [...new Set(profiles.flatMap((p) => p.networks))];
  if (o.network !== undefined && !known.includes(o.network)) throw new Error(`no network "${o.network}" in the chosen profiles (networks: ${known.join(", ")})`);
  const first = o.network ?? profiles[0]!.networks[0]!;
  const networks = [first, ...new Set(profiles.flatMap((p) => p.networks).filter((n) => n !== first))];
  const world = buildWorld(profiles, { mode: "lab" });
  const pins = Object.values(world.spec.data.hosts).flat();
  const chatUdp = Object.entries(world.spec.data.services ?? {}).map(([service, spec]) => ({ service, ports: spec.chat?.udp ?? [] }));
  const p = plan(networks, pins, chatUdp);
  try {
    if (datapath === "onpath") {
      const box = profiles.find((x) => x.dpi.box)?.dpi.box ?? DEFAULT_BOX;
      p.datapath = "onpath";
      p.hops = box.hops;
      p.residualSeconds = residualSeconds(profiles);
      await upOnPath(p);
      await loadRuleset(CENSOR_NS, onPathRuleset(p));
    } else await up(p);
  } catch (err) {
    // Half-built namespaces would block the next start ("namespaces of another lab exist").
    await down().catch(() => undefined);
    throw err;
  }
  const dir = mkdtempSync(join(tmpdir(), "chokepoint-plan-"));
  const planFile = join(dir, "plan.json");
  writeFileSync(planFile, JSON.stringify(p));
  let child: ChildProcess | undefined;
  const cleanup = async (): Promise<void> => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((r) => child!.once("exit", () => r()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child!.kill("SIGKILL"), 5000);
      await gone;
      clearTimeout(timer);
    }
    await down();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const controlSocket = join(dir, "control.sock");
    child = spawn("ip", ["netns", "exec", CENSOR_NS, process.execPath, BIN, "up", "--json", "--transparent-plan", planFile, "--control-socket", controlSocket, ...upArgs(o)], {
      stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" },
    });
    const ready = await new Promise<{ endpoints: Record<string, unknown> }>((resolve, reject) => {
      let out = "", err = "";
      child!.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const nl = out.indexOf("\n");
        if (nl >= 0) { try { resolve(JSON.parse(out.slice(0, nl))); } catch (e) { reject(e); } }
      });
      child!.stderr!.on("data", (d: Buffer) => (err += d.toString()));
      child!.once("exit", (code) => reject(new Error(`the lab in ${CENSOR_NS} exited (${code}) before it was ready: ${err.trim()}`)));
    });
    child.stderr!.pipe(process.stderr);
    // After the ready line, stdout carries the answers of the stdin control channel.
    const answers: ((line: string) => void)[] = [];
    let rest = "";
    child.stdout!.removeAllListeners("data");
    child.stdout!.on("data", (d: Buffer) => {
      rest += d.toString();
      for (let nl = rest.indexOf("\n"); nl >= 0; nl = rest.indexOf("\n")) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        answers.shift()?.(line);
      }
    });
    const byNetwork = new Map(p.links.map((l) => [l.network, l.ns]));
    return {
      plan: p,
      datapath,
      network: first,
      controlSocket,
      resolverOf(network: string): string {
        const i = p.links.findIndex((x) => x.network === network);
        if (i < 0) throw new Error(`no network "${network}" in this lab (networks: ${networks.join(", ")})`);
        // On the path, the first hop is a router (its own address is not DNATed): the box's resolver address for the link.
        return datapath === "onpath" ? boxDnsAddress(i) : p.links[i]!.censorV4;
      },
      ready,
      namespaceOf(network: string): string {
        const ns = byNetwork.get(network);
        if (!ns) throw new Error(`no network "${network}" in this lab (networks: ${networks.join(", ")})`);
        return ns;
      },
      seek(to: string): Promise<void> {
        return new Promise((resolve, reject) => {
          answers.push((line) => {
            const r = JSON.parse(line) as { ok: boolean; error?: string };
            if (r.ok) resolve(); else reject(new Error(`seek: ${r.error}`));
          });
          child!.stdin!.write(`${JSON.stringify({ seek: to })}\n`);
        });
      },
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
