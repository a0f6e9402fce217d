// The reference probe against a running lab, known only by its control API's URL: the
// endpoints of each network (GET /v1/status), the world's CA (GET /ca/lab.pem), and the
// control vantage (POST /v1/th, OONI's test-helper protocol). Each target is measured from
// each network, its flows tagged with a measurement id (SOCKS username NETWORK+TAG), and
// written as one OONI measurement.
import { randomBytes } from "node:crypto";
import { webConnectivity, type OoniMeasurement, type ThRequestBody, type ThResponseBody } from "./web.js";
import { webTarget } from "./expect.js";

export interface ProbeOptions {
  /** The lab's control API, e.g. http://127.0.0.1:8470. */
  control: string;
  /** Its token, when it is bound beyond loopback. */
  token?: string;
  /** Another test helper (default: the lab's own, at CONTROL/v1/th). */
  th?: string;
  /** Networks to measure from (default: the lab's default network). */
  networks?: string[];
  /** Tag each measurement's flows (default true): the ids are PREFIX-N. */
  tag?: boolean;
  tagPrefix?: string;
  stepMs?: number;
  softwareVersion?: string;
  onMeasurement?: (m: OoniMeasurement, done: number, total: number) => void;
}

interface LabEndpoint { host: string; port: number }
interface StatusBody { network: string; networks: string[]; endpoints: { dns?: LabEndpoint; socks?: LabEndpoint; networks?: Record<string, { dns?: LabEndpoint; socks?: LabEndpoint }> } }

async function call(url: string, token: string | undefined, init: { method?: string; body?: unknown } = {}): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: init.method ?? "GET",
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.body ? { "content-type": "application/json" } : {}) },
      ...(init.body ? { body: JSON.stringify(init.body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new Error(`cannot reach ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message} (is the lab up with its control API? chokepoint up prints its URL)`);
  }
  if (!res.ok) {
    const text = await res.text().catch(() => "");
    let why = text;
    try { why = (JSON.parse(text) as { error?: string }).error ?? text; } catch { /* not JSON */ }
    throw new Error(`${init.method ?? "GET"} ${url}: ${res.status} ${why}`.trim());
  }
  return res;
}

/** Measures every target from every network; returns the measurements in order. */
export async function runProbe(targets: string[], o: ProbeOptions): Promise<OoniMeasurement[]> {
  const base = o.control.replace(/\/+$/, "");
  for (const t of targets) webTarget(t); // every target is checked before anything is sent
  const status = (await (await call(`${base}/v1/status`, o.token)).json()) as StatusBody;
  const networks = o.networks?.length ? o.networks : [status.network];
  for (const n of networks) {
    if (!status.networks.includes(n)) throw new Error(`no network "${n}" in the lab at ${base} (its networks: ${status.networks.join(", ")})`);
  }
  const ca = await (await call(`${base}/ca/lab.pem`, o.token)).text();
  const th = (o.th ?? `${base}/v1/th`).replace(/\/+$/, "") || `${base}/v1/th`;
  const control = async (req: ThRequestBody): Promise<ThResponseBody> => (await (await call(th, o.token, { method: "POST", body: req })).json()) as ThResponseBody;
  const prefix = o.tagPrefix ?? `m${randomBytes(3).toString("hex")}`;
  const out: OoniMeasurement[] = [];
  const total = networks.length * targets.length;
  for (const network of networks) {
    const own = network === status.network ? status.endpoints : status.endpoints.networks?.[network];
    const dns = own?.dns ?? status.endpoints.networks?.[network]?.dns;
    const socks = own?.socks ?? status.endpoints.socks;
    if (!dns || !socks) throw new Error(`the lab at ${base} has no DNS or SOCKS listener for network "${network}" (explicit mode: chokepoint up)`);
    for (const target of targets) {
      const url = webTarget(target).url.href;
      const tag = o.tag === false ? undefined : `${prefix}-${out.length + 1}`;
      const m = await webConnectivity(url, {
        dns, socks: { ...socks, username: tag ? `${network}+${tag}` : network }, control, ca, network,
        ...(tag ? { tag } : {}), ...(o.stepMs ? { stepMs: o.stepMs } : {}), ...(o.softwareVersion ? { softwareVersion: o.softwareVersion } : {}),
      });
      out.push(m);
      o.onMeasurement?.(m, out.length, total);
    }
  }
  return out;
}
