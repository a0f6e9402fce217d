// The same target measured with real clients, as a cross-check of the project's own probe:
// dig at the network's resolver, curl through the network's SOCKS5 entry (trusting only the
// lab CA), and, when curl rejects the certificate, openssl s_client through the HTTP proxy to
// name the issuer. Each run is asynchronous: the lab under test lives in this process.
import { runTool, type ToolRun } from "../util/exec.js";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HTTP_MS } from "../probe/net.js";
import { sitePage } from "../world/pages.js";
import type { World } from "../world/world.js";
import type { Observed } from "../probe/measure.js";

/**
 * How the clients reach the network under test: through the lab's explicit entries (SOCKS5
 * and HTTP proxy, username = network), or from inside the network's client namespace
 * (transparent mode: no proxy setting; any resolver address is answered by the censor).
 */
export type ClientPath =
  | { kind: "explicit"; network: string; dns: { host: string; port: number }; socks: { host: string; port: number }; httpProxy?: { host: string; port: number } }
  | { kind: "transparent"; network: string; namespace: string };

export interface ClientTarget { world: World; caFile: string; path: ClientPath }

/** Any address will do in transparent mode: nft sends port 53 to the network's resolver. */
const ANY_RESOLVER = { host: "198.18.77.77", port: 53 };

export interface ClientCheck {
  /** The tools that ran, e.g. "dig+curl". */
  tool: string;
  observed: Observed;
  detail: string;
}

type Run = ToolRun;

/** A tool run, inside `namespace` when given (transparent mode). */
function run(cmd: string, args: string[], ms: number, input?: string, namespace?: string): Promise<Run> {
  if (namespace) { args = ["netns", "exec", namespace, cmd, ...args]; cmd = "ip"; }
  return runTool(cmd, args, { timeoutMs: ms, ...(input !== undefined ? { input } : {}) });
}

const missing = new Map<string, boolean>();
/** Whether a tool is on PATH (asked once per tool). */
export async function hasTool(cmd: string): Promise<boolean> {
  if (!missing.has(cmd)) missing.set(cmd, (await run(cmd, ["--version"], 5000)).code === "ENOENT");
  return !missing.get(cmd);
}

/** dig, once, at the network's resolver: the answer's addresses, or why there are none. */
async function dig(server: { host: string; port: number }, name: string, namespace?: string): Promise<{ addresses: string[] } | { fail: string }> {
  const r = await run("dig", [`@${server.host}`, "-p", String(server.port), "+tries=1", "+time=2", "+noall", "+comments", "+answer", name, "A"], 6000, undefined, namespace);
  if (r.code === 9) return { fail: "dig: no answer (timed out)" };
  if (r.code !== 0) return { fail: `dig exited ${r.code}` };
  const status = /status: ([A-Z]+)/.exec(r.out)?.[1] ?? "?";
  if (status !== "NOERROR") return { fail: `dig: ${status}` };
  const addresses = [...r.out.matchAll(/\sIN\s+A\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!);
  return addresses.length ? { addresses } : { fail: "dig: no addresses" };
}

/** The issuer's CN of what the network hands out for `host`, per openssl (through the HTTP proxy, or from the namespace). */
async function opensslIssuer(path: ClientPath, host: string, ip: string, port: number): Promise<string | undefined> {
  if (!(await hasTool("openssl"))) return undefined;
  const via = path.kind === "explicit"
    ? (path.httpProxy ? ["-proxy", `${path.httpProxy.host}:${path.httpProxy.port}`, "-proxy_user", path.network, "-proxy_pass", "pass:x"] : undefined)
    : [];
  if (!via) return undefined;
  const r = await run("openssl", ["s_client", ...via, "-connect", `${ip.includes(":") ? `[${ip}]` : ip}:${port}`, "-servername", host], 6000, undefined,
    path.kind === "transparent" ? path.namespace : undefined);
  return /^issuer=.*?CN ?= ?([^,\n]+)/m.exec(r.out)?.[1]?.trim();
}

/** What curl's verbose trace says happened. */
function curlObserved(r: Run, body: Buffer | undefined, host: string, path: string): { observed: Observed; detail: string } {
  const trace = r.err;
  const msg = /curl: \((\d+)\) ([^\n]*)/.exec(trace);
  if (r.code === 0) {
    const status = Number(r.out.trim());
    if (status !== 200) return { observed: "http-diff", detail: `curl: status ${status}` };
    if (body && !body.equals(sitePage(host, path))) return { observed: "http-diff", detail: "curl: body differs" };
    return { observed: "false", detail: "curl: 200, the page" };
  }
  const detail = `curl: (${msg?.[1] ?? r.code}) ${msg?.[2] ?? ""}`.trim();
  // Through SOCKS the TCP step is the proxy's grant; directly, curl's "Connected to".
  if (!/SOCKS5 request granted|Connected to (?!127\.0\.0\.1)/.test(trace)) return { observed: "tcp_ip", detail };
  if (r.code === 60) return { observed: "mitm", detail };
  const tls = /Client hello/.test(trace);
  const answered = /Server hello/.test(trace);
  if (tls && !answered) return { observed: r.code === 28 ? "tls-timeout" : "tls-reset", detail };
  if (r.code === 35) return { observed: "tls-reset", detail };
  return { observed: "http-failure", detail };
}

/**
 * Cross-checks an http(s) target with dig and curl (undefined for other targets, or when
 * the tools are missing). `throughput` asks curl for a download rate as well.
 */
export async function crossCheck(t: ClientTarget, target: string, throughput: boolean): Promise<ClientCheck | undefined> {
  if (!/^https?:\/\//.test(target) || !(await hasTool("dig")) || !(await hasTool("curl"))) return undefined;
  const { path } = t;
  const ns = path.kind === "transparent" ? path.namespace : undefined;
  const url = new URL(target);
  const host = url.hostname;
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const control = t.world.answer(host, "A").answers.map((a) => a.address);
  const d = await dig(path.kind === "explicit" ? path.dns : ANY_RESOLVER, host, ns);
  if ("fail" in d) return { tool: "dig", observed: "dns", detail: d.fail };
  if (control.length && !d.addresses.some((a) => control.includes(a))) return { tool: "dig", observed: "dns", detail: `dig: ${d.addresses.join(", ")}` };
  const ip = d.addresses.find((a) => control.includes(a)) ?? d.addresses[0]!;
  const dir = mkdtempSync(join(tmpdir(), "chokepoint-curl-"));
  try {
    const out = join(dir, "body");
    const via = path.kind === "explicit" ? ["-x", `socks5://${encodeURIComponent(path.network)}:x@${path.socks.host}:${path.socks.port}`] : [];
    // Plain HTTP waits as a probe's HTTP step does (a held request's page comes late: HTTP_MS).
    const maxS = url.protocol === "http:" ? HTTP_MS / 1000 : 4;
    const common = ["-sS", "--max-time", String(maxS), "--cacert", t.caFile, "--resolve", `${host}:${port}:${ip}`, ...via];
    const r = await run("curl", ["-v", "-o", out, "-w", "%{http_code}", ...common, url.href], (maxS + 4) * 1000, undefined, ns);
    let body: Buffer | undefined;
    try { body = readFileSync(out); } catch { body = undefined; }
    const seen = curlObserved(r, body, host, url.pathname);
    if (seen.observed === "mitm") {
      const issuer = await opensslIssuer(path, host, ip, port);
      if (issuer) return { tool: "dig+curl+openssl", observed: "mitm", detail: `${seen.detail}; openssl: issued by "${issuer}"` };
    }
    if (seen.observed === "false" && throughput) {
      const rate = await run("curl", ["-o", "/dev/null", "-w", "%{speed_download}", ...common.map((a) => (a === String(maxS) ? "1.5" : a)), new URL("/bytes/4194304", url).href], 5000, undefined, ns);
      // Through a slow link curl may decrypt nothing in time (a TLS record is up to 16 KB): 0 counts.
      const bps = Number(rate.out.trim());
      if ((rate.code === 0 || rate.code === 28) && bps < 256 * 1024) return { tool: "dig+curl", observed: "throttled", detail: `curl: ${Math.round(bps / 1024)} KiB/s` };
    }
    return { tool: "dig+curl", ...seen };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
