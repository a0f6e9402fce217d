// A client of the lab's control API at a base URL: http://HOST:PORT, or unix:PATH (the unix
// socket transparent mode gives the commands in its namespaces). One JSON request, bounded
// in time; a clear error when nothing answers.
import { request, type IncomingMessage } from "node:http";

export interface ControlReply { status: number; text: string }

/** Sends one request to `base` + `path`; rejects only when nothing answers. */
export function controlRequest(base: string, path: string, o: { method?: "GET" | "POST"; body?: unknown; token?: string; timeoutMs?: number } = {}): Promise<ControlReply> {
  const unix = /^unix:(.+)$/.exec(base);
  let target: { socketPath: string; path: string; host: string } | URL;
  if (unix) target = { socketPath: unix[1]!.replace(/\/+$/, ""), path: path.startsWith("/") ? path : `/${path}`, host: "localhost" };
  else {
    try {
      target = new URL(path.replace(/^\//, ""), base.endsWith("/") ? base : `${base}/`);
    } catch {
      return Promise.reject(new Error(`${base}: not a control API address (http://HOST:PORT or unix:PATH)`));
    }
  }
  const body = o.body === undefined ? undefined : JSON.stringify(o.body);
  return new Promise((resolve, reject) => {
    const opts = {
      method: o.method ?? "GET",
      headers: {
        ...(target instanceof URL ? {} : { host: "localhost" }),
        ...(body !== undefined ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) } : {}),
        ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
      },
      timeout: o.timeoutMs ?? 30_000,
    };
    const onResponse = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    };
    const req = target instanceof URL ? request(target, opts, onResponse) : request({ ...opts, socketPath: target.socketPath, path: target.path }, onResponse);
    req.on("timeout", () => req.destroy(new Error(`no answer within ${(o.timeoutMs ?? 30_000) / 1000} s`)));
    req.on("error", (err) => reject(new Error(`cannot reach ${unix ? base : (target as URL).href}: ${err.message} (is the lab up with its control API? chokepoint up prints its address)`)));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** The JSON of a reply, or an error naming the request and the lab's reason. */
export function replyJson<T>(r: ControlReply, what: string): T {
  let v: unknown;
  try { v = JSON.parse(r.text); } catch { v = undefined; }
  if (r.status < 200 || r.status >= 300) throw new Error(`${what}: ${r.status} ${(v as { error?: string } | undefined)?.error ?? r.text.slice(0, 200)}`.trim());
  if (v === undefined) throw new Error(`${what}: the answer is not JSON`);
  return v as T;
}
