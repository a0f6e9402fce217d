import { existsSync, readFileSync, statSync } from "node:fs";
import { delimiter, resolve } from "node:path";
import { Option, type Command } from "commander";
import type { Plan } from "../../transparent/topology.js";
import { startSession } from "../../transparent/session.js";
import { parseGatewayClients } from "../../transparent/gateway.js";
import { startLab } from "../../api.js";
import type { Lab } from "../../lab/lab.js";
import type { LabOptions } from "../../lab/options.js";
import { formatInstant } from "../../util/time.js";
import { describeAction } from "../../profile/describe.js";
import { startFeed } from "../feed.js";
import { MAX_SPEED } from "../../clock/clock.js";
import { terminalProgress } from "../progress.js";
import { c } from "../style.js";
import { fail } from "../errors.js";

interface UpOptions {
  profile: string[];
  controlSocket?: string;
  country?: string;
  variant?: string;
  network?: string;
  at?: string;
  from?: string;
  speed?: string;
  ports: string;
  listen: string;
  events?: string;
  world: string;
  confdir?: string;
  upstream?: string;
  dnsWorkers: string;
  json?: boolean;
  transparent?: boolean;
  transparentPlan?: string;
  gateway: string[];
  services: string[];
  control: boolean;
  controlToken?: string;
  controlTokenFile?: string;
  controlHost: string[];
  allowUpstream: string[];
  proxyPassword?: string;
  profilesDir: string[];
  eventsMaxSize?: string;
  paused?: boolean;
  datapath?: string;
  service: string[];
  servicesFile?: string;
}

/** `NAME=HOST:PORT` (HOST an address or localhost; [v6]:PORT too). */
export function parseService(v: string): { name: string; host: string; port: number } {
  const m = /^([^=\s]+)=(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(v.trim());
  if (!m) throw new Error(`--service takes NAME=HOST:PORT (e.g. bridge.example=127.0.0.1:9443), got "${v}"`);
  const host = (m[2] ?? m[3])!;
  return { name: m[1]!, host: host === "localhost" ? "127.0.0.1" : host, port: Number(m[4]) };
}

/** How the user runs us, for the hints we print: `npx chokepoint` from a local install, `chokepoint` when on PATH. */
export function invokedAs(): string {
  return process.env.npm_command === "exec" || process.env.npm_lifecycle_event ? "npx chokepoint" : "chokepoint";
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

/** A byte size: a number, or with K, M or G (binary). */
export function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)i?b?$/i.exec(v.trim());
  if (!m) throw new Error(`expected a size such as 50M or 1048576, got "${v}"`);
  return Math.round(Number(m[1]) * 1024 ** " kmg".indexOf((m[2] || " ").toLowerCase()));
}

/** The control token: given, from a file (kept out of `ps`), or from CHOKEPOINT_CONTROL_TOKEN. */
function controlToken(o: UpOptions): string | undefined {
  if (o.controlTokenFile) {
    const t = readFileSync(o.controlTokenFile, "utf8").trim();
    if (!/^[\x21-\x7e]{8,256}$/.test(t)) throw new Error(`--control-token-file ${o.controlTokenFile}: the token must be 8 to 256 printable characters without spaces`);
    return t;
  }
  return o.controlToken;
}

/** An address to tell people to connect to (a wildcard listener is reachable on loopback). */
const reachHost = (h: string): string => (h === "0.0.0.0" || h === "::" ? "127.0.0.1" : h);

export function parsePorts(v: string): "auto" | "default" | number {
  if (v === "auto" || v === "default") return v;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`--ports takes "auto" or a base port number, got "${v}"`);
  return n;
}

function parseWorkers(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`--dns-workers takes a number from 1 to 64, got "${v}"`);
  return n;
}

export function upCommand(program: Command): void {
  program
    .command("up")
    .description("run the lab: the censoring parts with the chosen regime(s)")
    .option("-p, --profile <id|file>", "profile to activate (repeatable; first match wins in this order)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--country <cc>", "activate every profile of this country in force at --at/--from (time travel)")
    .option("--variant <name>", "variant of the profiles that offer it")
    .option("--network <id>", "network of clients that name none (default: the first profile's first network)")
    .option("--at <instant>", "pin lab time, e.g. 2014-02-13T17:30:00+06:00")
    .option("--from <instant>", "replay from this instant")
    .option("--speed <n>", "lab seconds per real second (with --from)")
    .option("--ports <auto|base>", "listener ports: auto (ephemeral) or a base port", "default")
    .option("--listen <addr>", "listen address", "127.0.0.1")
    .option("--events <file>", "append every decision to this JSON Lines file")
    .option("--world <lab|internet>", "who answers behind the censor", "lab")
    .option("--upstream <addr>", "upstream resolver for --world internet (default: /etc/resolv.conf)")
    .option("--dns-workers <n>", "processes answering DNS over UDP (more use more cores)", "1")
    .option("--confdir <dir>", "configuration directory (lab CA); default ~/.chokepoint")
    .option("--json", "print one JSON line when ready ({\"ready\":true,\"endpoints\":...}) and no feed")
    .option("--transparent", "Linux, root: put each network's clients in a namespace whose only way out is the censor (see chokepoint exec)")
    .option("--datapath <proxy|onpath>", "with --transparent or --gateway: proxy (TCP terminated by the interceptor) or onpath (packets forwarded through router hops and the box); default: onpath for a profile with a box model (dpi.box), else proxy")
    .option("--gateway <cidr[=network]>", "Linux, NET_ADMIN (the Docker image): be the gateway of this client subnet, intercepting as --transparent does (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--services <cidr>", "with --gateway: a subnet of your own servers (a Tor bridge, say) the censor may connect to (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--control-token <token>", "the control API's token (needed when --listen is not loopback; made up if not given; env CHOKEPOINT_CONTROL_TOKEN keeps it out of ps)", process.env.CHOKEPOINT_CONTROL_TOKEN)
    .option("--control-token-file <file>", "read the control API's token from this file (kept out of ps)")
    .option("--control-host <name>", "a name the control API may be reached by besides loopback and the listen address (its Host check; repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--allow-upstream <cidr>", "--world internet: let clients reach this private or special prefix too (loopback, private, link-local are refused otherwise; repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--proxy-password <password>", "the proxies' password (username = network); required and made up when --world internet listens beyond loopback", process.env.CHOKEPOINT_PROXY_PASSWORD)
    .option("--profiles-dir <dir>", "a directory of your own profiles, by id like the project's (repeatable; also CHOKEPOINT_PROFILES)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--events-max-size <size>", "rotate the events file past this size (FILE -> FILE.1), e.g. 100M")
    .option("--service <name=host:port>", "explicit mode: put your own server (a bridge, proxy, VPN endpoint) into the lab world under NAME, reached through the censor (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--services-file <file>", "--service lines from a file (NAME=HOST:PORT a line, # comments)")
    .option("--paused", "start with lab time stopped (at --from, --at or now): press Play in the live view, or `clock resume`")
    .option("--no-control", "no control API and live view")
    .option("--control-socket <path>", "also serve the control API on this unix socket (owner-only; what transparent mode gives the commands in its namespaces)")
    .addOption(new Option("--transparent-plan <file>", "(internal) run inside the censor namespace of this topology").hideHelp())
    .action(async (o: UpOptions) => {
      try {
        if (o.transparent) return await transparentUp(o);
        if (o.datapath !== undefined && !o.gateway.length) throw new Error("--datapath chooses how --transparent or --gateway crosses the censor: add one of them (explicit mode has no datapath to choose)");
        if (o.datapath !== undefined && o.datapath !== "proxy" && o.datapath !== "onpath") throw new Error(`--datapath takes proxy or onpath, got "${o.datapath}"`);
        if (o.world !== "lab" && o.world !== "internet") throw new Error(`--world takes lab or internet, got "${o.world}"`);
        if (!o.profile.length && !o.country) throw new Error("name a regime: --profile ID (chokepoint list shows them) or --country CC --at DATE");
        const speed = o.speed === undefined ? undefined : Number(o.speed);
        if (speed !== undefined && !(speed > 0 && speed <= MAX_SPEED)) throw new Error(`--speed takes a number above 0 and at most ${MAX_SPEED}, got "${o.speed}"`);
        if (o.services.length && !o.gateway.length) throw new Error("--services goes with --gateway");
        const gateway = o.gateway.length ? { clients: o.gateway.map(parseGatewayClients), services: o.services, ...(o.datapath ? { datapath: o.datapath as "proxy" | "onpath" } : {}) } : undefined;
        const progress = o.json ? undefined : terminalProgress();
        if (o.profilesDir.length) {
          for (const d of o.profilesDir) if (!existsSync(d) || !statSync(d).isDirectory()) throw new Error(`--profiles-dir ${d}: not a directory`);
          process.env.CHOKEPOINT_PROFILES = [...o.profilesDir.map((d) => resolve(d)), ...(process.env.CHOKEPOINT_PROFILES ? [process.env.CHOKEPOINT_PROFILES] : [])].join(delimiter);
        }
        const token = controlToken(o);
        const serviceSpecs = [...o.service, ...(o.servicesFile ? readFileSync(o.servicesFile, "utf8").split("\n").map((l) => l.replace(/#.*/, "").trim()).filter(Boolean) : [])].map(parseService);
        const opts: LabOptions = {
          profiles: o.profile,
          ports: parsePorts(o.ports),
          listen: o.listen,
          world: o.world,
          handleSignals: true,
          ...(o.country ? { country: o.country } : {}),
          ...(o.variant ? { variant: o.variant } : {}),
          ...(o.network ? { network: o.network } : {}),
          ...(o.at ? { at: o.at } : {}),
          ...(o.from ? { from: o.from } : {}),
          ...(speed !== undefined ? { speed } : {}),
          ...(o.events ? { events: o.events } : {}),
          ...(o.confdir ? { confdir: o.confdir } : {}),
          ...(o.upstream ? { upstream: o.upstream } : {}),
          dnsWorkers: parseWorkers(o.dnsWorkers),
          ...(progress ? { onProgress: progress } : {}),
          ...(gateway ? { gateway } : {}),
          control: o.control,
          ...(token ? { controlToken: token } : {}),
          ...(o.controlHost.length ? { controlHosts: o.controlHost } : {}),
          ...(o.controlSocket ? { controlSocket: o.controlSocket } : {}),
          ...(o.allowUpstream.length ? { allowUpstream: o.allowUpstream } : {}),
          ...(o.proxyPassword ? { proxyPassword: o.proxyPassword } : {}),
          ...(o.eventsMaxSize ? { eventsMaxBytes: parseSize(o.eventsMaxSize) } : {}),
          ...(serviceSpecs.length ? { services: serviceSpecs } : {}),
          ...(o.transparentPlan ? { transparent: { plan: JSON.parse(readFileSync(o.transparentPlan, "utf8")) as Plan } } : {}),
        };
        const lab = await startLab(opts);
        if (o.paused) lab.clock.pause();
        if (o.json) {
          const dp = lab.status().datapath;
          process.stdout.write(`${JSON.stringify({ ready: true, ...(gateway && dp ? { datapath: dp } : {}), endpoints: lab.endpoints, ...(lab.controlToken ? { controlToken: lab.controlToken } : {}), ...(lab.proxyPassword ? { proxyPassword: lab.proxyPassword } : {}) })}\n`);
          if (o.transparentPlan) controlOverStdin(lab);
          return;
        }
        const tz = lab.profiles[0]?.timezone ?? "UTC";
        const lines = [
          `${c.bold("chokepoint")} up: ${lab.profiles.map((p) => `${p.id}${p.variant ? ` (${p.variant})` : ""}`).join(", ")}`,
          `lab time ${formatInstant(lab.clock.now(), tz)} (${lab.clock.mode}${lab.clock.mode === "replay" ? `, x${lab.clock.speed}` : ""}${lab.clock.paused && lab.clock.mode !== "pinned" ? ", paused" : ""}), default network ${lab.network}, ${plural(lab.policy.stats.rules, "rule")}`,
        ];
        for (const p of lab.profiles) for (const r of p.rules.slice(0, 8)) lines.push(c.dim(`  ${p.id}/${r.id}: ${describeAction(r.action)}`));
        for (const [name, ep] of Object.entries(lab.endpoints)) {
          if (name === "networks" || name === "control" || typeof ep !== "object") continue;
          const scope = name === "relay" ? "network: as registered" : name === "sms" ? "network: the username" : `network ${lab.network}`;
          lines.push(`  ${name.padEnd(10)} ${(ep as { host: string }).host}:${(ep as { port: number }).port}  (${scope})`);
        }
        for (const [net, eps] of Object.entries(lab.endpoints.networks ?? {})) {
          for (const [name, ep] of Object.entries(eps)) lines.push(`  ${name.padEnd(10)} ${ep.host}:${ep.port}  (network ${net})`);
        }
        if (lab.endpoints.control) {
          const ch = reachHost(lab.endpoints.control.host);
          const url = `http://${ch.includes(":") ? `[${ch}]` : ch}:${lab.endpoints.control.port}/`;
          lines.push(`  ${"control".padEnd(10)} ${url}${lab.controlToken ? `?token=${lab.controlToken}` : ""}  (live view and API${lab.controlToken ? `; token ${lab.controlToken}` : ""}; trust the CA: ${url}ca)`);
        }
        if (lab.endpoints.controlSocket) lines.push(`  ${"control".padEnd(10)} unix:${lab.endpoints.controlSocket}  (the same API on a unix socket: --control unix:PATH)`);
        if (lab.proxyPassword) lines.push(`  ${"proxies".padEnd(10)} need a username (the network) and the password ${lab.proxyPassword} (--world internet beyond loopback)`);
        for (const s of serviceSpecs) {
          const addr = lab.world.addresses(s.name).v4[0];
          lines.push(`  ${"service".padEnd(10)} ${s.name} (${addr}:${s.port}) -> ${s.host}:${s.port}, through the censor`);
        }
        const onPath = lab.status().datapath === "onpath";
        for (const g of gateway?.clients ?? []) lines.push(`  gateway    clients in ${g.prefix} (network ${g.network ?? lab.network}): ${onPath ? "TCP read by the on-path box (packets, NFQUEUE) and answered by the world's origin here" : "TCP by TPROXY"}, DNS and messaging UDP by DNAT`);
        if (lab.endpoints.dns) lines.push(c.dim(`  try: dig @${reachHost(lab.endpoints.dns.host)} -p ${lab.endpoints.dns.port} example.org`));
        if (lab.endpoints.relay) lines.push(c.dim(`  try: ${invokedAs()} msg listen --as +77010000001 --network ${lab.network} --relay ${reachHost(lab.endpoints.relay.host)}:${lab.endpoints.relay.port}`));
        if (!Object.keys(lab.endpoints).length) lines.push(c.dim("  (no listeners in this build yet: the censoring parts come with later releases)"));
        lines.push(c.dim("Ctrl-C stops the lab."));
        process.stdout.write(`${lines.join("\n")}\n`);
        startFeed(lab);
      } catch (err) {
        fail(err);
      }
    });
}

/**
 * Inside the censor namespace, the session that started this lab steers its clock over
 * stdin, one JSON line each way: {"seek": INSTANT} -> {"ok": true, "labTime": ISO}. (Seeking
 * clears the residual table, as a fresh start would.)
 */
function controlOverStdin(lab: Lab): void {
  let buf = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (d: string) => {
    buf += d;
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let reply: unknown;
      try {
        const m = JSON.parse(line) as { seek?: string };
        if (typeof m.seek !== "string") throw new Error("expected {\"seek\": INSTANT}");
        lab.seek(m.seek);
        reply = { ok: true, labTime: new Date(lab.clock.now()).toISOString() };
      } catch (err) {
        reply = { ok: false, error: (err as Error).message };
      }
      process.stdout.write(`${JSON.stringify(reply)}\n`);
    }
  });
}

/** `up --transparent`: the topology and the lab in it, until Ctrl-C or SIGTERM. */
async function transparentUp(o: UpOptions): Promise<void> {
  if (o.datapath !== undefined && o.datapath !== "proxy" && o.datapath !== "onpath") throw new Error(`--datapath takes proxy or onpath, got "${o.datapath}"`);
  const session = await startSession({
    profiles: o.profile,
    ...(o.country ? { country: o.country } : {}), ...(o.at ? { at: o.at } : {}), ...(o.from ? { from: o.from } : {}),
    ...(o.speed ? { speed: o.speed } : {}), ...(o.variant ? { variant: o.variant } : {}), ...(o.network ? { network: o.network } : {}),
    ...(o.confdir ? { confdir: o.confdir } : {}), ...(o.events ? { events: o.events } : {}),
    ...(o.datapath ? { datapath: o.datapath as "proxy" | "onpath" } : {}),
  });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void session.stop().then(() => process.exit(0), (err: unknown) => fail(err));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ ready: true, transparent: true, datapath: session.datapath, namespaces: Object.fromEntries(session.plan.links.map((l) => [l.network, l.ns])), endpoints: session.ready.endpoints })}\n`);
    return;
  }
  const lines = [`${c.bold("chokepoint")} up, transparent (${session.datapath === "onpath" ? "on-path: packets forwarded through router hops and the box" : "proxy: TCP terminated by the interceptor"}): every network's clients have a namespace whose only way out is the censor`];
  for (const l of session.plan.links) lines.push(`  ${l.network.padEnd(28)} ${l.ns}  (${l.clientV4}, ${l.clientV6})`);
  lines.push(c.dim(`  try: sudo ip netns exec ${session.namespaceOf(session.network)} curl -s https://www.example.kz/ --cacert ~/.chokepoint/ca/lab.pem`));
  lines.push(c.dim("  or:  sudo npx chokepoint exec --profile ... -- CMD (a lab of its own)"));
  lines.push(c.dim("Ctrl-C stops the lab and removes the namespaces."));
  process.stdout.write(`${lines.join("\n")}\n`);
}