// The transparent-mode topology on Linux: per network a client namespace whose only way out
// is the censor; the censor namespace, where the lab runs; the world namespace, where the
// lab world's addresses are local and one origin answers them all. Everything is named
// chokepoint-*, addressed from 198.18.0.0/15 and 2001:db8::/32, and has no route outside.
//
//   chokepoint-<net>  cpc<i> 198.18.(128+i).2  ──veth──  cpr<i> 198.18.(128+i).1  chokepoint-censor
//                                                         cpw1   198.18.127.1    ──veth──  cpw0 198.18.127.2  chokepoint-world
import { sh } from "../util/exec.js";
import { isIP } from "node:net";

export const CENSOR_NS = "chokepoint-censor";
export const WORLD_NS = "chokepoint-world";
export const NS_PREFIX = "chokepoint-";
/** The censor's TPROXY listener and the world origin's, inside their namespaces. */
export const TPROXY_PORT = 15001;
export const ORIGIN_PORT = 15002;
/** The censor's interception rule (chain mangle_pre): every client TCP connection but DNS to the lab. */
export const tproxyRule = (iif: string): string => `iifname ${iif} meta l4proto tcp tcp dport != 53 meta mark set 0x1 tproxy to :${TPROXY_PORT} accept`;
export const TPROXY_RULE = tproxyRule(`"cpr*"`);
/**
 * Addresses in the world namespace for real servers a test or a user starts there (a Tor
 * bridge, say): routed like the world's, but not sent to the origin.
 */
export const SERVICE_PREFIX = "198.18.126.0/24";
/** The addresses the world serves besides its pins (world/lab: 198.19.0.0/16, 2001:db8:19::/48). */
export const WORLD_PREFIXES = ["198.19.0.0/16", "2001:db8:19::/48"];
const MAX_NETWORKS = 100;

export interface Link {
  network: string;
  /** The censor's interface towards these clients, and its addresses there. */
  censor: string;
  censorV4: string;
  censorV6?: string;
  /** Namespace mode: the client namespace, its interface and its addresses. */
  ns?: string;
  client?: string;
  clientV4?: string;
  clientV6?: string;
  /** Gateway mode (gateway.ts): the clients' IPv4 subnet; any address in it is this network's. */
  clientPrefix?: string;
}

/** A link of namespace mode: every address known. */
export type NsLink = Link & { ns: string; client: string; clientV4: string; clientV6: string; censorV6: string };

export interface Plan {
  /** Absent: namespaces on this host (this file); "gateway": this host is the clients' gateway (gateway.ts). */
  mode?: "gateway";
  links: Link[];
  /** Namespace mode: the world link. */
  world?: { censorV4: string; worldV4: string; censorV6: string; worldV6: string };
  /** Gateway mode: where else, besides the world, the censor may connect for its clients (CIDRs). */
  services?: string[];
  /** Addresses pinned by the world data (routed to the world namespace besides WORLD_PREFIXES). */
  pins: string[];
  /** Messaging services with UDP chat ports: the censor sends those datagrams to the relay, on relayPort. */
  chatUdp: { service: string; ports: number[]; relayPort: number }[];
  /**
   * Which datapath crosses the censor: "proxy" (default: TCP terminated by the interceptor,
   * TPROXY) or "onpath" (packets forwarded through router hops and the box; onpath.ts).
   */
  datapath?: "proxy" | "onpath";
  /** On-path: routers between the clients and the box, and between the box and the world. */
  hops?: { client: number; server: number };
  /** On-path: how long a residual null route lasts (the longest of the profiles' rules), in seconds. */
  residualSeconds?: number;
}

/** The relay's UDP ports in the censor namespace, one per service, from here up. */
export const CHAT_UDP_BASE = 15003;

/** Namespace names are the network ids; interfaces are short (15 characters at most). */
export function plan(networks: string[], pins: string[], chatUdp: { service: string; ports: number[] }[] = []): Plan {
  if (networks.length > MAX_NETWORKS) throw new Error(`transparent mode supports up to ${MAX_NETWORKS} networks (got ${networks.length})`);
  const links = networks.map((network, i): NsLink => ({
    network,
    ns: `${NS_PREFIX}${network}`.slice(0, 64),
    client: `cpc${i}`,
    censor: `cpr${i}`,
    censorV4: `198.18.${128 + i}.1`,
    clientV4: `198.18.${128 + i}.2`,
    censorV6: canonical6(`2001:db8:c0:${i.toString(16)}::1`),
    clientV6: canonical6(`2001:db8:c0:${i.toString(16)}::2`),
  }));
  for (const p of pins) {
    const m = /^198\.18\.(\d+)\./.exec(p);
    if (m && Number(m[1]) >= 126) throw new Error(`world pin ${p} falls in the range transparent mode uses for services and links (198.18.126.0-198.18.255.255)`);
  }
  return {
    links,
    world: { censorV4: "198.18.127.1", worldV4: "198.18.127.2", censorV6: "2001:db8:ff::1", worldV6: "2001:db8:ff::2" },
    pins: [...new Set(pins)].sort(),
    chatUdp: chatUdp.filter((c) => c.ports.length).map((c, k) => ({ ...c, relayPort: CHAT_UDP_BASE + k })),
  };
}

export { sh };

/** Namespace names of the on-path chain's routers (removed by down() with the rest). */
export const HOP_PREFIX = `${NS_PREFIX}hop-`;

const ipn = (ns: string, ...args: string[]): Promise<string> => sh("ip", ["-n", ns, ...args]);

/** Why transparent mode cannot run here, or undefined. */
export async function preflight(): Promise<string | undefined> {
  if (process.platform !== "linux") return "transparent mode needs Linux (network namespaces, nftables, TPROXY)";
  if (process.getuid?.() !== 0) return "transparent mode needs root (network namespaces, nftables, IP_TRANSPARENT): run it with sudo";
  for (const [tool, pkg] of [["ip", "iproute2"], ["nft", "nftables"]] as const) {
    try { await sh(tool, ["-V"]); } catch { return `transparent mode needs \`${tool}\` (Debian: apt-get install ${pkg})`; }
  }
  return undefined;
}

/** The lab's namespaces that exist now. */
export async function existingNamespaces(): Promise<string[]> {
  const out = await sh("ip", ["netns", "list"]);
  return out.split("\n").map((l) => l.split(" ")[0]!).filter((n) => n.startsWith(NS_PREFIX));
}

/** DNS (udp and tcp 53, any address) and messaging UDP from each link's clients to the lab's listeners on the censor's end of the link. */
export function dnatRules(p: Plan): string[] {
  return p.links.flatMap((l) => [
    `    iifname "${l.censor}" meta nfproto ipv4 meta l4proto { udp, tcp } th dport 53 dnat ip to ${l.censorV4}:53`,
    ...(l.censorV6 ? [`    iifname "${l.censor}" meta nfproto ipv6 meta l4proto { udp, tcp } th dport 53 dnat ip6 to [${l.censorV6}]:53`] : []),
    // A messaging service's UDP (Viber's ports, say), to any address: to the relay.
    ...p.chatUdp.flatMap((c) => [
      `    iifname "${l.censor}" meta nfproto ipv4 udp dport { ${c.ports.join(", ")} } dnat ip to ${l.censorV4}:${c.relayPort}`,
      ...(l.censorV6 ? [`    iifname "${l.censor}" meta nfproto ipv6 udp dport { ${c.ports.join(", ")} } dnat ip6 to [${l.censorV6}]:${c.relayPort}`] : []),
    ]),
  ]);
}

/** The per-network chains the kernel rules fill (kernel-rules.ts), empty at first. */
export function netChains(p: Plan): string {
  return p.links.map((_, i) => `  chain net_${i} {\n  }`).join("\n");
}

/** The lab world's IPv4 prefixes and pins (what the world serves). */
export function worldV4(p: Plan): string[] {
  return [...WORLD_PREFIXES, ...p.pins].filter((x) => !x.includes(":"));
}

/** The kernel rules' entry (chain kernel_pre): each link's clients to their network's chain. */
export function kernelJumps(p: Plan): string[] {
  return [
    // Gateway mode: the censor's own listeners (the explicit proxies, published on the host)
    // stay reachable whatever the regime cuts; DNS to it is judged like any other.
    ...(p.mode === "gateway" ? ["    meta l4proto { tcp, udp } th dport != 53 fib daddr type local accept"] : []),
    ...p.links.map((l, i) => `    iifname "${l.censor}" jump net_${i}`),
  ];
}

/**
 * The censor's ruleset: TCP to the interceptor by TPROXY, DNS (udp and tcp 53, any address)
 * to the network's resolver. In gateway mode, connections to the censor's own addresses (its
 * explicit listeners) are left alone.
 */
export function censorRuleset(p: Plan): string {
  const dnat = dnatRules(p);
  const intercept = p.mode === "gateway"
    ? [`fib daddr type local accept`, tproxyRule(`{ ${[...new Set(p.links.map((l) => `"${l.censor}"`))].join(", ")} }`)]
    : [TPROXY_RULE];
  const jumps = kernelJumps(p);
  return `table inet chokepoint {
  # Address, port and transport rules in force for each network (kernel-rules.ts fills them).
  chain kernel_pre {
    type filter hook prerouting priority -200; policy accept;
${jumps.join("\n")}
  }
${netChains(p)}
  chain mangle_pre {
    type filter hook prerouting priority mangle; policy accept;
${intercept.map((r) => `    ${r}`).join("\n")}
  }
  chain nat_pre {
    type nat hook prerouting priority dstnat; policy accept;
${dnat.join("\n")}
  }
  chain forward {
    # Nothing is forwarded: what the lab does not intercept fails closed.
    type filter hook forward priority filter; policy drop;
  }
}
`;
}

/** The world's ruleset: every TCP connection to a served address goes to the one origin listener. */
export function worldRuleset(): string {
  return `table inet chokepoint {
  chain mangle_pre {
    type filter hook prerouting priority mangle; policy accept;
    iifname "cpw0" ip daddr != ${SERVICE_PREFIX} meta l4proto tcp meta mark set 0x1 tproxy ip to :${ORIGIN_PORT} accept
    iifname "cpw0" meta nfproto ipv6 meta l4proto tcp meta mark set 0x1 tproxy ip6 to :${ORIGIN_PORT} accept
  }
}
`;
}

/** TPROXY'd packets (mark 1) are delivered locally; `ns` undefined: this process's namespace. */
export async function tproxyRouting(ns: string | undefined, o: { optionalV6?: boolean } = {}): Promise<void> {
  const ip = (...a: string[]): Promise<string> => (ns ? ipn(ns, ...a) : sh("ip", a));
  await ip("rule", "add", "fwmark", "0x1/0x1", "lookup", "100", "pref", "100");
  await ip("route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100");
  const v6 = async (): Promise<void> => {
    await ip("-6", "rule", "add", "fwmark", "0x1/0x1", "lookup", "100", "pref", "100");
    await ip("-6", "route", "add", "local", "::/0", "dev", "lo", "table", "100");
  };
  await (o.optionalV6 ? v6().catch(() => undefined) : v6());
}

export async function loadRuleset(ns: string | undefined, text: string): Promise<void> {
  try {
    await (ns ? sh("ip", ["netns", "exec", ns, "nft", "-f", "-"], text) : sh("nft", ["-f", "-"], text));
  } catch (err) {
    const msg = (err as Error).message;
    if (/tproxy|No such file or directory|Operation not supported/i.test(msg)) {
      throw new Error(`nftables refused the TPROXY ruleset (is the kernel's nft_tproxy module available? modprobe nft_tproxy): ${msg}`);
    }
    throw err;
  }
}

/** Creates the namespaces, links, routes and rulesets. On failure, removes what it made. */
export async function up(p: Plan): Promise<void> {
  const stale = await existingNamespaces();
  if (stale.length) throw new Error(`namespaces of another lab exist (${stale.join(", ")}): stop that lab, or remove them with \`chokepoint down\``);
  try {
    for (const ns of [CENSOR_NS, WORLD_NS, ...(p.links as NsLink[]).map((l) => l.ns)]) {
      await sh("ip", ["netns", "add", ns]);
      await ipn(ns, "link", "set", "lo", "up");
    }
    // World link and the world's addresses.
    const w = p.world!;
    await sh("ip", ["link", "add", "cpw1", "netns", CENSOR_NS, "type", "veth", "peer", "name", "cpw0", "netns", WORLD_NS]);
    await ipn(CENSOR_NS, "addr", "add", `${w.censorV4}/24`, "dev", "cpw1");
    await ipn(CENSOR_NS, "addr", "add", `${w.censorV6}/64`, "dev", "cpw1", "nodad");
    await ipn(WORLD_NS, "addr", "add", `${w.worldV4}/24`, "dev", "cpw0");
    await ipn(WORLD_NS, "addr", "add", `${w.worldV6}/64`, "dev", "cpw0", "nodad");
    await ipn(CENSOR_NS, "link", "set", "cpw1", "up");
    await ipn(WORLD_NS, "link", "set", "cpw0", "up");
    for (const prefix of [...WORLD_PREFIXES, SERVICE_PREFIX, ...p.pins]) {
      const v6 = prefix.includes(":");
      const bare = prefix.includes("/") ? prefix : `${prefix}/${v6 ? 128 : 32}`;
      await ipn(WORLD_NS, ...(v6 ? ["-6"] : []), "route", "add", "local", bare, "dev", "lo");
      await ipn(CENSOR_NS, ...(v6 ? ["-6"] : []), "route", "add", bare, "via", v6 ? w.worldV6 : w.worldV4);
    }
    // Replies from the world to clients (only kernel forwarding, as in the bench's baseline, needs them).
    await ipn(WORLD_NS, "route", "add", "198.18.128.0/17", "via", w.censorV4);
    await ipn(WORLD_NS, "-6", "route", "add", "2001:db8:c0::/48", "via", w.censorV6);
    // Client links.
    for (const l of p.links as NsLink[]) {
      await sh("ip", ["link", "add", l.censor, "netns", CENSOR_NS, "type", "veth", "peer", "name", l.client, "netns", l.ns]);
      await ipn(CENSOR_NS, "addr", "add", `${l.censorV4}/24`, "dev", l.censor);
      await ipn(CENSOR_NS, "addr", "add", `${l.censorV6}/64`, "dev", l.censor, "nodad");
      await ipn(l.ns, "addr", "add", `${l.clientV4}/24`, "dev", l.client);
      await ipn(l.ns, "addr", "add", `${l.clientV6}/64`, "dev", l.client, "nodad");
      await ipn(CENSOR_NS, "link", "set", l.censor, "up");
      await ipn(l.ns, "link", "set", l.client, "up");
      await ipn(l.ns, "route", "add", "default", "via", l.censorV4);
      await ipn(l.ns, "-6", "route", "add", "default", "via", l.censorV6);
    }
    await tproxyRouting(CENSOR_NS);
    await tproxyRouting(WORLD_NS);
    await loadRuleset(CENSOR_NS, censorRuleset(p));
    await loadRuleset(WORLD_NS, worldRuleset());
  } catch (err) {
    await down();
    throw err;
  }
}

/**
 * Removes every chokepoint-* namespace (their veths, routes and nft tables go with them) and
 * the processes still running in them. Touches nothing else. Returns what it removed.
 */
export async function down(): Promise<string[]> {
  const names = await existingNamespaces();
  for (const ns of names) {
    const pids = (await sh("ip", ["netns", "pids", ns]).catch(() => "")).split("\n").map(Number).filter((n) => n > 0 && n !== process.pid);
    for (const pid of pids) { try { process.kill(pid, "SIGKILL"); } catch { /* gone */ } }
  }
  for (const ns of names) await sh("ip", ["netns", "delete", ns]).catch(() => undefined);
  return names;
}

/** The compressed form the kernel (and Node's socket.remoteAddress) uses: 2001:db8:c0::2. */
function canonical6(a: string): string {
  if (isIP(a) !== 6) throw new Error(`not an IPv6 address: ${a}`);
  return new URL(`http://[${a}]/`).hostname.slice(1, -1);
}
