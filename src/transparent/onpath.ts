// The on-path datapath's topology: packets are forwarded, not terminated, along a chain of
// namespaces, as on the real path:
//
//   client ns -> hop c1 .. cN -> chokepoint-censor (the box) -> hop w1 .. wM -> chokepoint-world
//
// Every namespace of the chain forwards (ip_forward=1) and so decrements TTL: a TTL-limited
// packet expires where it would on a path with the box N hops from the client and M+1 from
// the server, and the routers answer ICMP time-exceeded. The world's origin terminates TCP as
// the real server does (TPROXY in the world namespace, as in the proxy datapath). IPv4 only.
import { sh } from "../util/exec.js";
import { RawSocket, load } from "../util/netfilter.js";
import type { Profile } from "../profile/model.js";
import { CENSOR_NS, NS_PREFIX, SERVICE_PREFIX, WORLD_NS, down, existingNamespaces, loadRuleset, netChains, tproxyRouting, worldRuleset, worldV4, type NsLink, type Plan } from "./topology.js";

/** The chain's namespaces, client side first. */
export function chain(p: Plan): string[] {
  const h = p.hops ?? { client: 0, server: 0 };
  return [...Array.from({ length: h.client }, (_, k) => `${NS_PREFIX}hop-c${k + 1}`), CENSOR_NS, ...Array.from({ length: h.server }, (_, k) => `${NS_PREFIX}hop-w${k + 1}`)];
}

/** The box's DNS address for network link i (where the resolver listens; DNS from that network is DNATed there). */
export const boxDnsAddress = (i: number): string => `198.18.120.${i + 1}`;
/** Addresses of the links between chain namespaces k and k+1: left .1, right .2. */
const linkNet = (k: number): string => `198.18.${100 + k}`;
/** The client side's prefix (every client link). */
export const CLIENTS = "198.18.128.0/17";
/**
 * The box's own address for the connections it opens to the world for no client (the control
 * vantage): in the clients' prefix, so the world routes the answers back through the chain.
 * For a client's flow it connects from the client's address (BoxDatapath.upstreamFrom).
 */
export const BOX_UPSTREAM_V4 = "198.18.255.254";

const ipn = (ns: string, ...args: string[]): Promise<string> => sh("ip", ["-n", ns, ...args]);
const sysctl = (ns: string, kv: string): Promise<string> => sh("ip", ["netns", "exec", ns, "sysctl", "-qw", kv]);

/** Creates the chain, the client links, the world link, routes and the world's ruleset. On failure, removes what it made. */
export async function upOnPath(p: Plan): Promise<void> {
  const stale = await existingNamespaces();
  if (stale.length) throw new Error(`namespaces of another lab exist (${stale.join(", ")}): stop that lab, or remove them with \`chokepoint down\``);
  const ns = chain(p);
  const links = p.links as NsLink[];
  const boxAt = ns.indexOf(CENSOR_NS);
  try {
    for (const n of [...ns, WORLD_NS, ...links.map((l) => l.ns)]) {
      await sh("ip", ["netns", "add", n]);
      await ipn(n, "link", "set", "lo", "up");
    }
    // The box's taken-over sockets would end in TIME_WAIT on the server's 4-tuple, and a
    // client that reuses its port (it has no TIME_WAIT of its own) would meet that old socket
    // (the takeover then fails: address in use). A box on the path is no host and keeps no
    // TIME_WAIT: in its namespace the kernel keeps none (no buckets: a closed socket is gone).
    await sysctl(CENSOR_NS, "net.ipv4.tcp_max_tw_buckets=0").catch(() => undefined);
    await sysctl(CENSOR_NS, "net.ipv4.tcp_tw_reuse=1").catch(() => undefined);
    for (const n of ns) {
      await sysctl(n, "net.ipv4.ip_forward=1");
      // Insertion packets (bad ACKs, out-of-window data) are forwarded, not marked invalid and dropped.
      await sysctl(n, "net.netfilter.nf_conntrack_tcp_be_liberal=1").catch(() => undefined);
    }
    // Between chain namespaces k and k+1.
    for (let k = 0; k + 1 < ns.length; k++) {
      const a = `cpl${k}a`, b = `cpl${k}b`;
      await sh("ip", ["link", "add", a, "netns", ns[k]!, "type", "veth", "peer", "name", b, "netns", ns[k + 1]!]);
      await ipn(ns[k]!, "addr", "add", `${linkNet(k)}.1/24`, "dev", a);
      await ipn(ns[k + 1]!, "addr", "add", `${linkNet(k)}.2/24`, "dev", b);
      await ipn(ns[k]!, "link", "set", a, "up");
      await ipn(ns[k + 1]!, "link", "set", b, "up");
    }
    // The world link, from the last namespace of the chain.
    const last = ns[ns.length - 1]!;
    const w = p.world!;
    await sh("ip", ["link", "add", "cpw1", "netns", last, "type", "veth", "peer", "name", "cpw0", "netns", WORLD_NS]);
    await ipn(last, "addr", "add", `${w.censorV4}/24`, "dev", "cpw1");
    await ipn(WORLD_NS, "addr", "add", `${w.worldV4}/24`, "dev", "cpw0");
    await ipn(last, "link", "set", "cpw1", "up");
    await ipn(WORLD_NS, "link", "set", "cpw0", "up");
    // Client links, from the first namespace of the chain.
    const first = ns[0]!;
    for (const l of links) {
      await sh("ip", ["link", "add", l.censor, "netns", first, "type", "veth", "peer", "name", l.client, "netns", l.ns]);
      await ipn(first, "addr", "add", `${l.censorV4}/24`, "dev", l.censor);
      await ipn(l.ns, "addr", "add", `${l.clientV4}/24`, "dev", l.client);
      await ipn(first, "link", "set", l.censor, "up");
      await ipn(l.ns, "link", "set", l.client, "up");
      await ipn(l.ns, "route", "add", "default", "via", l.censorV4);
    }
    // The box's DNS addresses (one per network: the resolver knows a query's network by the address it reached).
    for (let i = 0; i < links.length; i++) await ipn(CENSOR_NS, "addr", "add", `${boxDnsAddress(i)}/32`, "dev", "lo");
    await ipn(CENSOR_NS, "addr", "add", `${BOX_UPSTREAM_V4}/32`, "dev", "lo");
    // Routes: towards the world to the right, towards the clients to the left.
    const world = [...worldV4(p), SERVICE_PREFIX];
    for (let k = 0; k < ns.length; k++) {
      const toWorld = k + 1 < ns.length ? `${linkNet(k)}.2` : w.worldV4;
      // Before the box every router sends everything towards it (DNS to any address included:
      // the box answers it); from the box on, only the world's prefixes are routed (fail closed).
      if (k < boxAt) await ipn(ns[k]!, "route", "add", "default", "via", toWorld);
      else for (const prefix of world) await ipn(ns[k]!, "route", "add", prefix.includes("/") ? prefix : `${prefix}/32`, "via", toWorld);
      if (k > 0) await ipn(ns[k]!, "route", "add", CLIENTS, "via", `${linkNet(k - 1)}.1`);
    }
    await ipn(WORLD_NS, "route", "add", CLIENTS, "via", w.censorV4);
    for (const prefix of world) await ipn(WORLD_NS, "route", "add", "local", prefix.includes("/") ? prefix : `${prefix}/32`, "dev", "lo");
    await tproxyRouting(WORLD_NS, { optionalV6: true });
    // The box takes flows over (MITM, block pages): their packets, marked 0x1, are delivered to its own sockets.
    await tproxyRouting(CENSOR_NS, { optionalV6: true });
    await loadRuleset(WORLD_NS, worldRuleset());
  } catch (err) {
    await down();
    throw err;
  }
}

/**
 * The box's ruleset (table inet chokepoint in the censor namespace), all before the routing
 * decision (so TTL-limited packets are still seen, as by a bump in the wire). Before
 * conntrack: flows taken over (steered to the box's sockets), residual null routes (4-tuple,
 * client -> server, renewed by every matching packet, SYNs included: WOOT 2021) and dropped
 * flows. After it: flows let be (a connection mark, set from the verdict's packet mark), no
 * payload (copied to the box, or bare ACKs, not held), and a mark on every other TCP packet,
 * which an iptables rule hands to the box through NFQUEUE (this kernel has NFQUEUE as an
 * xtables target, not as nft's queue statement). DNS from each
 * network to the box's address for it; kernel rules per client prefix; a forward chain that
 * passes only clients <-> the world.
 */
export function onPathRuleset(p: Plan, residualSeconds = p.residualSeconds ?? 120): string {
  const links = p.links as NsLink[];
  const world = [...worldV4(p), SERVICE_PREFIX];
  return `table inet chokepoint {
${boxRules(CLIENTS, residualSeconds, { skip: [`ip daddr ${BOX_UPSTREAM_V4}`, `ct original ip saddr ${BOX_UPSTREAM_V4}`] })}
  # The box's connections for a client leave with the client's address (BoxDatapath.upstreamFrom);
  # conntrack turns the answers back to the box (their source kept only where the map says).
  map upsrc { type ipv4_addr . inet_service . ipv4_addr . inet_service : ipv4_addr; flags timeout; timeout 10m; }
  chain box_snat {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr ${BOX_UPSTREAM_V4} snat ip to ip saddr . tcp sport . ip daddr . tcp dport map @upsrc
  }
  chain kernel_pre {
    type filter hook prerouting priority -200; policy accept;
${links.map((l, i) => `    ip saddr ${l.clientV4} jump net_${i}`).join("\n")}
  }
${netChains(p)}
  chain nat_pre {
    type nat hook prerouting priority dstnat; policy accept;
${links.map((l, i) => `    ip saddr ${l.clientV4} meta l4proto { udp, tcp } th dport 53 dnat ip to ${boxDnsAddress(i)}:53`).join("\n")}
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ip saddr ${CLIENTS} ip daddr { ${world.join(", ")} } accept
    ip daddr ${CLIENTS} ip saddr { ${world.join(", ")} } accept
    # The routers' answers (time exceeded, unreachable) reach the clients, as on a real path.
    ip daddr ${CLIENTS} icmp type { time-exceeded, destination-unreachable } accept
  }
}
`;
}

/**
 * The box's sets and chains, in the namespace chain and in a gateway alike. `clients`: the
 * clients' addresses (a prefix, or an anonymous set); `skip`: packets never queued (the box's
 * own traffic); `output`: the servers answer from this namespace (a gateway's origin), so the
 * box also reads locally generated packets of the world's addresses.
 */
export function boxRules(clients: string, residualSeconds: number, o: { skip?: string[]; output?: { world: string } } = {}): string {
  const tuple = "ipv4_addr . ipv4_addr . inet_service . inet_service";
  const key = "ip saddr . ip daddr . tcp sport . tcp dport";
  const tuple3 = "ipv4_addr . ipv4_addr . inet_service";
  const key3 = "ip saddr . ip daddr . tcp dport";
  const out = o.output;
  return `  set allow4 { type ${tuple}; flags timeout; timeout 10m; }
  set drop4 { type ${tuple}; flags timeout; timeout 10m; }
  set resid4 { type ${tuple}; flags dynamic, timeout; timeout ${residualSeconds}s; }
  set resid4n { type ${tuple}; flags timeout; timeout ${residualSeconds}s; }
  set resid3 { type ${tuple3}; flags dynamic, timeout; timeout ${residualSeconds}s; }
  set resid3n { type ${tuple3}; flags timeout; timeout ${residualSeconds}s; }
  set mitm4 { type ${tuple}; flags timeout; timeout 10m; }
  chain box_pre {
    type filter hook prerouting priority -310; policy accept;
    # Flows the box took over: the client's packets go to the box's own socket (fwmark 0x1:
    # local delivery), the orphaned server's never reach the client.
    ip protocol tcp ${key} @mitm4 meta mark set mark or 0x1 accept
    ip protocol tcp ip daddr . ip saddr . tcp dport . tcp sport @mitm4 drop
    # Residual null routes (the rule's key: 4-tuple, or 3-tuple: any client port; renewed by
    # every matching packet, or not).
    ip protocol tcp ${key} @resid4 update @resid4 { ${key} } counter drop
    ip protocol tcp ${key} @resid4n counter drop
    ip protocol tcp ${key3} @resid3 update @resid3 { ${key3} } counter drop
    ip protocol tcp ${key3} @resid3n counter drop
    ip protocol tcp ${key} @drop4 counter drop
  }
  chain box_queue {
    type filter hook prerouting priority -190; policy accept;
    meta mark & 0x1 == 0x1 accept
${(o.skip ?? []).map((r) => `    ${r} accept`).join("\n")}
    jump box_read
  }
  # What the box reads, from both directions.
  chain box_read {
    # Flows the box let be: their connection carries the mark its verdict set (box_decided),
    # so the rest of them, both ways, stays in the kernel with no set to update.
    ct mark & 0x2 == 0x2 accept
    ip protocol tcp ${key} @allow4 accept
    # Segments without payload are never held: bare ACKs carry nothing a box reads (left to
    # the kernel); SYNs, SYN/ACKs, RSTs and FINs are copied to the box (NFLOG group 1) for
    # its flow state and go on at once. The payload is empty when the IP length is the
    # headers' (IP header without options, TCP data offset d: 20 + 4d bytes).
${emptySegmentRules()}
    ip protocol tcp ip saddr ${clients} meta mark set mark or 0x100
    ip protocol tcp ip daddr ${clients} meta mark set mark or 0x100
  }
  chain box_decided {
    type filter hook prerouting priority -140; policy accept;
    # After the queue (iptables mangle, -150): a packet the box allowed marks its connection.
    meta mark & 0x2 == 0x2 ct mark set ct mark or 0x2
  }${out ? `
  # The servers answer from this namespace: their packets to the clients are read on output.
  # The box's own packets (its injections, the sockets of flows it took over) carry mark 0x4.
  chain box_out {
    type filter hook output priority -190; policy accept;
    meta mark & 0x4 == 0x4 accept
    ip protocol tcp ip daddr . ip saddr . tcp dport . tcp sport @mitm4 drop
    ip saddr ${out.world} ip daddr ${clients} jump box_read
  }
  chain box_out_decided {
    type filter hook output priority -140; policy accept;
    meta mark & 0x2 == 0x2 ct mark set ct mark or 0x2
  }` : ""}`;
}

/** nft rules for TCP segments with no payload (one pair per data offset): bare ACKs pass, the rest are copied to the box and pass. */
function emptySegmentRules(): string {
  return Array.from({ length: 11 }, (_, i) => i + 5).flatMap((d) => {
    const empty = `ip protocol tcp ip hdrlength 5 tcp doff ${d} ip length ${20 + 4 * d}`;
    return [`    ${empty} tcp flags & (syn | rst | fin) == 0x0 accept`, `    ${empty} log group 1 snaplen 128 accept`];
  }).join("\n");
}

/**
 * The iptables rule that hands marked packets to the box (queue 0; with no box bound, they
 * pass: --queue-bypass). In mangle (priority -150): after conntrack, so that the box's
 * verdicts can mark connections, and before routing, so that TTL-limited packets are seen.
 */
export const QUEUE_RULE = ["-t", "mangle", "-A", "PREROUTING", "-m", "mark", "--mark", "0x100/0x100", "-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass"];
/** A gateway's servers answer from its own namespace: their packets are queued on output too. */
export const QUEUE_RULE_OUTPUT = QUEUE_RULE.map((a) => (a === "PREROUTING" ? "OUTPUT" : a));

/** Why the on-path datapath cannot run here (its tools), or undefined. */
async function onPathMissing(): Promise<string | undefined> {
  const iptables = await sh("iptables", ["-V"]).then(() => true, () => false);
  if (!iptables) return "the on-path datapath needs iptables (the kernel's NFQUEUE is an xtables target here; Debian: apt-get install iptables)";
  try {
    load("libnetfilter_queue.so.1", "libnetfilter-queue1");
    load("libnetfilter_log.so.1", "libnetfilter-log1");
    new RawSocket().close();
  } catch (err) {
    return (err as Error).message.replace(/^the on-path box/, "the on-path datapath");
  }
  return undefined;
}

/**
 * The datapath: as asked (--datapath), else the profile's: on-path where its record describes
 * the box on the wire (a `dpi.box` model), the proxy elsewhere. A default that cannot run
 * here falls back to the proxy, said on stderr; an explicit one fails.
 */
export async function chooseDatapath(asked: "proxy" | "onpath" | undefined, hasBox: boolean): Promise<"proxy" | "onpath"> {
  if (asked === "proxy" || (!asked && !hasBox)) return "proxy";
  const missing = await onPathMissing();
  if (!missing) return "onpath";
  if (asked) throw new Error(missing);
  process.stderr.write(`chokepoint: the profile's box runs on the on-path datapath, but ${missing.replace(/^the on-path datapath /, "it ")}: using the proxy datapath\n`);
  return "proxy";
}

/** The longest residual of the profiles' rules, in seconds (the residual sets' default timeout). */
export function residualSeconds(profiles: Profile[]): number {
  return Math.max(1, ...profiles.flatMap((x) => x.rules.map((r) => (r.residual ? r.residual.ms / 1000 : 1))));
}
