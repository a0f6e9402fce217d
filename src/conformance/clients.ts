// The same target measured with real clients, as a cross-check of the project's own probe:
// dig at the network's resolver, curl through the network's SOCKS5 entry (trusting only the
// lab CA), and, when curl rejects the certificate, openssl s_client through the HTTP proxy to
// name the issuer. Each run is asynchronous: the lab under test lives in this process.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sitePage } from "../world/pages.js";
import type { MeasureOptions, Observed } from "./measure.js";

export interface ClientCheck {
  /** The tools that ran, e.g. "dig+curl". */
  tool: string;
  observed: Observed;
  detail: string;
}

interface Run { code: number | string; out: string; err: string }

function run(cmd: string, args: string[], ms: number, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: ms, maxBuffer: 4 << 20 }, (e, out, err) => {
      const code = e ? ((e as NodeJS.ErrnoException).code ?? (e as { signal?: string }).signal ?? 1) : 0;
      resolve({ code: code as number | string, out: String(out), err: String(err) });
    });
    child.stdin?.on("error", () => undefined); // a tool that exits without reading
    child.stdin?.end(input ?? "");
  });
}

const missing = new Map<string, boolean>();
/** Whether a tool is on PATH (asked once per tool). */
export async function hasTool(cmd: string): Promise<boolean> {
  if (!missing.has(cmd)) missing.set(cmd, (await run(cmd, ["--version"], 5000)).code === "ENOENT");
  return !missing.get(cmd);
}

/** dig, once, at the network's resolver: the answer's addresses, or why there are none. */
async function dig(server: { host: string; port: number }, name: string): Promise<{ addresses: string[] } | { fail: string }> {
  const r = await run("dig", [`@${server.host}`, "-p", String(server.port), "+tries=1", "+time=2", "+noall", "+comments", "+answer", name, "A"], 6000);
  if (r.code === 9) return { fail: "dig: no answer (timed out)" };
  if (r.code !== 0) return { fail: `dig exited ${r.code}` };
  const status = /status: ([A-Z]+)/.exec(r.out)?.[1] ?? "?";
  if (status !== "NOERROR") return { fail: `dig: ${status}` };
  const addresses = [...r.out.matchAll(/\sIN\s+A\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!);
  return addresses.length ? { addresses } : { fail: "dig: no addresses" };
}

/** The issuer's CN of what the network's HTTP proxy hands out for `host`, per openssl. */
async function opensslIssuer(o: MeasureOptions, host: string, ip: string, port: number): Promise<string | undefined> {
  const proxy = o.lab.endpoints.httpProxy;
  if (!proxy || !(await hasTool("openssl"))) return undefined;
  const r = await run("openssl", ["s_client", "-proxy", `${proxy.host}:${proxy.port}`, "-proxy_user", o.network, "-proxy_pass", "pass:x",
    "-connect", `${ip}:${port}`, "-servername", host], 6000);
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
  if (!/SOCKS5 request granted/.test(trace)) return { observed: "tcp_ip", detail };
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
export async function crossCheck(o: MeasureOptions, target: string, dnsServer: { host: string; port: number }, throughput: boolean): Promise<ClientCheck | undefined> {
  if (!/^https?:\/\//.test(target) || !(await hasTool("dig")) || !(await hasTool("curl"))) return undefined;
  const url = new URL(target);
  const host = url.hostname;
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const control = o.lab.world.answer(host, "A").answers.map((a) => a.address);
  const d = await dig(dnsServer, host);
  if ("fail" in d) return { tool: "dig", observed: "dns", detail: d.fail };
  if (control.length && !d.addresses.some((a) => control.includes(a))) return { tool: "dig", observed: "dns", detail: `dig: ${d.addresses.join(", ")}` };
  const ip = d.addresses.find((a) => control.includes(a)) ?? d.addresses[0]!;
  const socks = o.lab.endpoints.socks!;
  const dir = mkdtempSync(join(tmpdir(), "chokepoint-curl-"));
  try {
    const out = join(dir, "body");
    const common = ["-sS", "--max-time", "4", "--cacert", o.lab.pki.authority("lab").certFile, "--resolve", `${host}:${port}:${ip}`,
      "-x", `socks5://${encodeURIComponent(o.network)}:x@${socks.host}:${socks.port}`];
    const r = await run("curl", ["-v", "-o", out, "-w", "%{http_code}", ...common, url.href], 8000);
    let body: Buffer | undefined;
    try { body = readFileSync(out); } catch { body = undefined; }
    const seen = curlObserved(r, body, host, url.pathname);
    if (seen.observed === "mitm") {
      const issuer = await opensslIssuer(o, host, ip, port);
      if (issuer) return { tool: "dig+curl+openssl", observed: "mitm", detail: `${seen.detail}; openssl: issued by "${issuer}"` };
    }
    if (seen.observed === "false" && throughput) {
      const rate = await run("curl", ["-o", "/dev/null", "-w", "%{speed_download}", ...common.map((a) => (a === "4" ? "1.5" : a)), new URL("/bytes/4194304", url).href], 5000);
      // Through a slow link curl may decrypt nothing in time (a TLS record is up to 16 KB): 0 counts.
      const bps = Number(rate.out.trim());
      if ((rate.code === 0 || rate.code === 28) && bps < 256 * 1024) return { tool: "dig+curl", observed: "throttled", detail: `curl: ${Math.round(bps / 1024)} KiB/s` };
    }
    return { tool: "dig+curl", ...seen };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
