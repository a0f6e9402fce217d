// The reference probe against a running lab, known only by its control API (http://HOST:PORT,
// or unix:PATH from a transparent-mode namespace): the endpoints of each network (GET
// /v1/status), the world's CA (GET /ca/lab.pem), and the control vantage (POST /v1/th,
// OONI's test-helper protocol). Each target is measured from each network and written as
// one OONI measurement, its flows tagged with a measurement id: through the explicit entries
// by the SOCKS username NETWORK+TAG; in transparent mode (the probe runs in a network's
// namespace, `chokepoint exec`) by POST /v1/tag naming its own address.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect, isIP, type Socket } from "node:net";
import { networkInterfaces } from "node:os";
import { webConnectivity, type OoniMeasurement, type ThRequestBody, type ThResponseBody } from "./web.js";
import { webTarget } from "./expect.js";
import { controlRequest, replyJson } from "../util/control-client.js";
import { connectThroughSocks } from "../util/socks-client.js";
import { failureOf, type Endpoint } from "./net.js";

export interface ProbeOptions {
  /** The lab's control API: http://127.0.0.1:8470, or unix:PATH (CHOKEPOINT_CONTROL in `chokepoint exec`). */
  control: string;
  /** Its token, when it is bound beyond loopback. */
  token?: string;
  /** Another test helper (default: the lab's own, at CONTROL/v1/th). */
  th?: string;
  /** explicit (default): through each network's DNS listener and SOCKS5 entry; transparent: the system's way out (run it in a namespace). */
  entry?: "explicit" | "transparent";
  /** Networks to measure from (default: the lab's default network; transparent: the namespace's, CHOKEPOINT_NETWORK). */
  networks?: string[];
  /** Transparent: the resolver to ask, HOST or HOST:PORT (default: CHOKEPOINT_RESOLVER, else resolv.conf's first nameserver). */
  resolver?: string;
  /** Tag each measurement's flows (default true): the ids are PREFIX-N. */
  tag?: boolean;
  tagPrefix?: string;
  stepMs?: number;
  softwareVersion?: string;
  onMeasurement?: (m: OoniMeasurement, done: number, total: number) => void;
}

interface LabEndpoint { host: string; port: number }
interface StatusBody { network: string; networks: string[]; endpoints: { dns?: LabEndpoint; socks?: LabEndpoint; networks?: Record<string, { dns?: LabEndpoint; socks?: LabEndpoint }> } }

/** HOST, HOST:PORT or [V6]:PORT -> an endpoint on port 53 by default. */
export function parseResolver(s: string): Endpoint {
  const m = /^\[([^\]]+)\](?::(\d+))?$|^([^:]+)(?::(\d+))?$|^([0-9a-fA-F:]+)$/.exec(s.trim());
  const host = m?.[1] ?? m?.[3] ?? m?.[5];
  const port = Number(m?.[2] ?? m?.[4] ?? 53);
  if (!host || !isIP(host) || !(port > 0 && port < 65536)) throw new Error(`resolver "${s}": give an address, ADDRESS:PORT or [IPV6]:PORT`);
  return { host, port };
}

/** The first nameserver of /etc/resolv.conf. */
function systemResolver(): Endpoint | undefined {
  try {
    const m = /^\s*nameserver\s+(\S+)/m.exec(readFileSync("/etc/resolv.conf", "utf8"));
    return m ? parseResolver(m[1]!.includes(":") ? `[${m[1]}]` : m[1]!) : undefined;
  } catch {
    return undefined;
  }
}

/** This host's own address (transparent mode: the client's address in its namespace, as the lab sees it). */
function ownAddress(): string | undefined {
  const all = Object.values(networkInterfaces()).flat().filter((a) => a && !a.internal);
  return (all.find((a) => a!.family === "IPv4") ?? all[0])?.address;
}

function direct(ip: string, port: number, ms: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: ip, port });
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`no connection within ${ms / 1000} s`)); }, ms);
    s.once("connect", () => { clearTimeout(timer); s.pause(); resolve(s); });
    s.once("error", (err) => { clearTimeout(timer); s.destroy(); reject(Object.assign(new Error(failureOf(err)), { code: (err as NodeJS.ErrnoException).code })); });
  });
}

/** Measures every target from every network; returns the measurements in order. */
export async function runProbe(targets: string[], o: ProbeOptions): Promise<OoniMeasurement[]> {
  const base = o.control.replace(/\/+$/, "");
  for (const t of targets) webTarget(t); // every target is checked before anything is sent
  const call = async <T>(path: string, body?: unknown): Promise<T> =>
    replyJson<T>(await controlRequest(base, path, { method: body === undefined ? "GET" : "POST", ...(body !== undefined ? { body } : {}), ...(o.token ? { token: o.token } : {}) }), `${body === undefined ? "GET" : "POST"} ${base}${path}`);
  const status = await call<StatusBody>("/v1/status");
  const transparent = o.entry === "transparent";
  const networks = o.networks?.length ? o.networks : [transparent ? process.env.CHOKEPOINT_NETWORK ?? status.network : status.network];
  for (const n of networks) {
    if (!status.networks.includes(n)) throw new Error(`no network "${n}" in the lab at ${base} (its networks: ${status.networks.join(", ")})`);
  }
  if (transparent && networks.length > 1) throw new Error("transparent mode measures from the namespace the probe runs in: one network (chokepoint exec --network NET -- chokepoint probe ...)");
  const caReply = await controlRequest(base, "/ca/lab.pem", o.token ? { token: o.token } : {});
  if (caReply.status !== 200) throw new Error(`GET ${base}/ca/lab.pem: ${caReply.status}`);
  const ca = caReply.text;
  const th = o.th?.replace(/\/+$/, "");
  const control = async (req: ThRequestBody): Promise<ThResponseBody> =>
    th ? replyJson<ThResponseBody>(await controlRequest(th, "/", { method: "POST", body: req }), `POST ${th}/`) : call<ThResponseBody>("/v1/th", req);
  const prefix = o.tagPrefix ?? `m${randomBytes(3).toString("hex")}`;
  const me = transparent ? ownAddress() : undefined;
  const out: OoniMeasurement[] = [];
  const total = networks.length * targets.length;
  for (const network of networks) {
    let dns: Endpoint | undefined;
    let reach: (tag: string | undefined) => { connect: (ip: string, port: number, ms: number) => Promise<Socket>; socksproxy?: string };
    if (transparent) {
      dns = o.resolver ? parseResolver(o.resolver) : process.env.CHOKEPOINT_RESOLVER ? parseResolver(process.env.CHOKEPOINT_RESOLVER) : systemResolver();
      if (!dns) throw new Error("transparent mode: no resolver (give --resolver ADDRESS; chokepoint exec sets CHOKEPOINT_RESOLVER)");
      reach = () => ({ connect: direct });
    } else {
      const own = network === status.network ? status.endpoints : status.endpoints.networks?.[network];
      dns = own?.dns;
      const socks = own?.socks ?? status.endpoints.socks;
      if (!dns || !socks) throw new Error(`the lab at ${base} has no DNS or SOCKS listener for network "${network}" (explicit mode: chokepoint up)`);
      reach = (tag) => ({
        connect: (ip, port, ms) => connectThroughSocks({ ...socks, username: tag ? `${network}+${tag}` : network }, ip, port, ms),
        socksproxy: `${socks.host}:${socks.port}`,
      });
    }
    for (const target of targets) {
      const url = webTarget(target).url.href;
      const tag = o.tag === false ? undefined : `${prefix}-${out.length + 1}`;
      // Transparent: the lab tags what this address does next (its DNS queries too).
      if (tag && me) await call("/v1/tag", { client: me, tag, ttl: 120 });
      const m = await webConnectivity(url, {
        dns: dns!, ...reach(tag), control, ca, network,
        ...(tag ? { tag } : {}), ...(o.stepMs ? { stepMs: o.stepMs } : {}), ...(o.softwareVersion ? { softwareVersion: o.softwareVersion } : {}),
      });
      out.push(m);
      o.onMeasurement?.(m, out.length, total);
    }
    if (me && o.tag !== false) await call("/v1/tag", { client: me, tag: null });
  }
  return out;
}
