// Gateway mode (Docker): the lab's own network namespace (a container's, with NET_ADMIN) is
// the gateway of one or more client subnets. The same interception as transparent mode's
// censor namespace (TPROXY for TCP, DNAT of DNS and of the messaging services' UDP ports,
// kernel rules), but on the interfaces that face those subnets and with no world namespace:
// the lab world is served by the lab itself, and nothing else is reachable except the
// service subnets it is told about.
import { networkInterfaces, type NetworkInterfaceInfo } from "node:os";
import { prefixMatcher } from "../policy/cidr.js";
import { sh } from "../util/exec.js";
import { CHAT_UDP_BASE, ORIGIN_PORT, censorRuleset, dnatRules, kernelJumps, loadRuleset, netChains, tproxyRouting, worldV4, type Link, type Plan } from "./topology.js";
import { QUEUE_RULE, QUEUE_RULE_OUTPUT, boxRules } from "./onpath.js";

export interface GatewayClients {
  /** The clients' IPv4 subnet, e.g. 198.18.192.0/24. */
  prefix: string;
  /** Their network (default: the lab's default network). */
  network?: string;
}

const CIDR4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/** `CIDR[=NETWORK]` or `auto[=NETWORK]` (every subnet this host is on), as `up --gateway` takes it. */
export function parseGatewayClients(v: string): GatewayClients {
  const [prefix, network] = v.split("=", 2) as [string, string | undefined];
  if (prefix !== "auto" && !isCidr4(prefix)) throw new Error(`--gateway takes an IPv4 subnet, optionally with its network (198.18.192.0/24=kazakhtelecom-megaline), got "${v}"`);
  return { prefix, ...(network ? { network } : {}) };
}

/** 10.89.0.5 with 255.255.255.0 -> 10.89.0.0/24 */
export function subnetOf(address: string, netmask: string): string {
  const a = address.split(".").map(Number);
  const m = netmask.split(".").map(Number);
  const bits = m.reduce((n, o) => n + o.toString(2).replace(/0/g, "").length, 0);
  return `${a.map((o, i) => o & m[i]!).join(".")}/${bits}`;
}

export function isCidr4(v: string): boolean {
  const m = CIDR4.exec(v);
  return !!m && m.slice(1, 5).every((o) => Number(o) <= 255) && Number(m[5]) <= 32;
}

export interface GatewayPlanInput {
  clients: GatewayClients[];
  /** The networks of the active profiles, the default first. */
  networks: string[];
  chatUdp: { service: string; ports: number[] }[];
  /** Addresses pinned by the world data (served by the lab like the world's prefixes). */
  pins?: string[];
  services?: string[];
  /** This namespace's interfaces (tests pass their own). */
  interfaces?: NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** The on-path datapath (the box reads the clients' packets; the origin here terminates TCP), with the box's hops. */
  onPath?: { hops: { client: number; server: number }; residualSeconds: number };
}

/** Finds, for each client subnet, the interface and address this host has in it. */
export function gatewayPlan(input: GatewayPlanInput): Plan {
  if (!input.clients.length) throw new Error("gateway mode needs at least one client subnet (--gateway CIDR)");
  const ifaces = input.interfaces ?? networkInterfaces();
  // "auto": each subnet an interface of this host is on (a container's networks).
  const clients = input.clients.flatMap((c) => (c.prefix !== "auto" ? [c] : Object.values(ifaces).flatMap((as) =>
    (as ?? []).filter((x) => x.family === "IPv4" && !x.internal).map((x) => ({ ...c, prefix: subnetOf(x.address, x.netmask) })))));
  if (!clients.length) throw new Error("--gateway auto: this host has no IPv4 interface besides loopback");
  const links = clients.map((c): Link => {
    const network = c.network ?? input.networks[0]!;
    if (!input.networks.includes(network)) throw new Error(`--gateway ${c.prefix}=${network}: no network "${network}" in the chosen profiles (networks: ${input.networks.join(", ")})`);
    const inPrefix = prefixMatcher([c.prefix]);
    for (const [name, addrs] of Object.entries(ifaces)) {
      const a = (addrs ?? []).find((x) => x.family === "IPv4" && !x.internal && inPrefix(x.address));
      if (a) return { network, censor: name, censorV4: a.address, clientPrefix: c.prefix };
    }
    const have = Object.entries(ifaces).flatMap(([n, as]) => (as ?? []).filter((x) => x.family === "IPv4").map((x) => `${n} ${x.cidr ?? x.address}`));
    throw new Error(`--gateway ${c.prefix}: no interface here has an address in that subnet (have: ${have.join(", ") || "none"}); is this container attached to the clients' network?`);
  });
  const seen = new Set<string>();
  for (const l of links) {
    if (seen.has(l.censor)) throw new Error(`two client subnets on one interface (${l.censor}): give each network its own Docker network`);
    seen.add(l.censor);
  }
  for (const s of input.services ?? []) if (!isCidr4(s)) throw new Error(`--services takes IPv4 subnets, got "${s}"`);
  return {
    mode: "gateway",
    links,
    pins: [...new Set(input.pins ?? [])].sort(),
    services: input.services ?? [],
    chatUdp: input.chatUdp.filter((c) => c.ports.length).map((c, k) => ({ ...c, relayPort: CHAT_UDP_BASE + k })),
    ...(input.onPath ? { datapath: "onpath" as const, hops: input.onPath.hops, residualSeconds: input.onPath.residualSeconds } : {}),
  };
}

/** Where a gateway's origin listens for the connections TPROXY hands it on the on-path datapath. */
export const GATEWAY_ORIGIN = { host: "127.0.0.1", port: ORIGIN_PORT };

/**
 * The on-path datapath in a gateway (a container, where no namespaces can be made): the box's
 * sets and chains on the client interfaces, both directions (the servers' packets from the
 * origin here are read on output); then the world's addresses go to the origin by TPROXY,
 * which terminates TCP as the real server does, and the service subnets are forwarded. No
 * routers stand between: the hops are a TTL rule (a packet that would expire before the box
 * is dropped before it, one that would expire before the server is dropped after it), with no
 * ICMP time-exceeded answer (docs/ARCHITECTURE.md, "the gateway on the path").
 */
export function gatewayOnPathRuleset(p: Plan): string {
  const hops = p.hops ?? { client: 0, server: 0 };
  const ifaces = `{ ${[...new Set(p.links.map((l) => `"${l.censor}"`))].join(", ")} }`;
  const clients = `{ ${p.links.map((l) => l.clientPrefix ?? l.clientV4).join(", ")} }`;
  const world = `{ ${worldV4(p).join(", ")} }`;
  const services = p.services ?? [];
  const toServer = hops.client + hops.server + 1;
  return `table inet chokepoint {
  chain hops_pre {
    type filter hook prerouting priority -320; policy accept;
${hops.client > 0 ? `    iifname ${ifaces} ip ttl <= ${hops.client} counter drop` : "    # no routers before the box"}
  }
${boxRules(clients, p.residualSeconds ?? 120, { skip: ["fib daddr type local"], output: { world } })}
  chain kernel_pre {
    type filter hook prerouting priority -200; policy accept;
${kernelJumps(p).join("\n")}
  }
${netChains(p)}
  chain world_pre {
    type filter hook prerouting priority -130; policy accept;
    meta mark & 0x1 == 0x1 accept
    iifname ${ifaces} fib daddr type != local ip ttl <= ${toServer} counter drop
    iifname ${ifaces} ip daddr ${world} meta l4proto tcp meta mark set 0x1 tproxy ip to ${GATEWAY_ORIGIN.host}:${GATEWAY_ORIGIN.port} accept
  }
  chain nat_pre {
    type nat hook prerouting priority dstnat; policy accept;
${dnatRules(p).join("\n")}
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
${services.length ? `    iifname ${ifaces} ip daddr { ${services.join(", ")} } accept
    ip saddr { ${services.join(", ")} } ip daddr ${clients} accept` : "    # nothing is forwarded: no service subnets"}
  }
}
`;
}

/** Installs the routing rule and the nft table in this namespace; on failure, removes them again. */
export async function gatewayUp(p: Plan): Promise<void> {
  if (process.platform !== "linux") throw new Error("gateway mode needs Linux (nftables, TPROXY)");
  for (const [tool, pkg] of [["ip", "iproute2"], ["nft", "nftables"]] as const) {
    try { await sh(tool, ["-V"]); } catch { throw new Error(`gateway mode needs \`${tool}\` (Debian: apt-get install ${pkg})`); }
  }
  await gatewayDown();
  try {
    // Docker's networks are IPv4 unless enable_ipv6: the v6 half may fail, the v4 half must not.
    await tproxyRouting(undefined, { optionalV6: true });
    if (p.datapath === "onpath") {
      // Service subnets are forwarded, not proxied, on the path: the namespace must forward
      // (a container's /proc/sys may be read-only: docker run --sysctl net.ipv4.ip_forward=1).
      if (p.services?.length) await sh("sysctl", ["-qw", "net.ipv4.ip_forward=1"]).catch(() => {
        throw new Error("the on-path gateway forwards to --services subnets and cannot turn forwarding on here: start the container with --sysctl net.ipv4.ip_forward=1");
      });
      // As in the censor namespace: no TIME_WAIT for the sockets of flows the box takes over.
      await sh("sysctl", ["-qw", "net.ipv4.tcp_max_tw_buckets=0"]).catch(() => undefined);
      // Insertion packets (bad ACKs, out-of-window data) are not conntrack's to judge.
      await sh("sysctl", ["-qw", "net.netfilter.nf_conntrack_tcp_be_liberal=1"]).catch(() => undefined);
      await loadRuleset(undefined, gatewayOnPathRuleset(p));
    } else await loadRuleset(undefined, censorRuleset(p));
  } catch (err) {
    await gatewayDown();
    const msg = (err as Error).message;
    if (/Operation not permitted|Permission denied/i.test(msg)) {
      throw new Error(`gateway mode needs CAP_NET_ADMIN and root in its namespace (docker run --cap-add NET_ADMIN --user root): ${msg}`);
    }
    throw err;
  }
}

/** Removes what gatewayUp installed (the lab's nft table and routing rule only). */
export async function gatewayDown(): Promise<void> {
  await sh("nft", ["delete", "table", "inet", "chokepoint"]).catch(() => undefined);
  // The on-path box's queue rules, if a killed lab left them (the box removes its own on stop).
  for (const rule of [QUEUE_RULE, QUEUE_RULE_OUTPUT]) {
    while (await sh("iptables", rule.map((a) => (a === "-A" ? "-D" : a))).then(() => true, () => false));
  }
  for (const fam of ["-4", "-6"]) {
    await sh("ip", [fam, "rule", "del", "fwmark", "0x1/0x1", "lookup", "100", "pref", "100"]).catch(() => undefined);
    await sh("ip", [fam, "route", "flush", "table", "100"]).catch(() => undefined);
  }
}
