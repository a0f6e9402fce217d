// What the world's web origin answers, for HTTP/1.1 and h2 alike (Node's compat API):
//   /           a small page naming the site (the same bytes every run)
//   /bytes/N    N bytes of a fixed pattern, for bulk transfers
//   /echo       the request line and headers back, for probes
//   /status/N   that status
// DoH stand-ins (dns.google, cloudflare-dns.com) are routed to doh.ts.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";

export type Req = IncomingMessage | Http2ServerRequest;
export type Res = ServerResponse | Http2ServerResponse;

const MAX_BYTES = 2 ** 40;
const CHUNK = Buffer.alloc(64 * 1024, "chokepoint-world.");

export function requestHost(req: Req): string {
  const raw = (req.headers[":authority"] as string | undefined) ?? req.headers.host ?? "";
  return raw.replace(/:\d+$/, "").replace(/^\[|\]$/g, "").toLowerCase() || "unknown";
}

export function sitePage(host: string, path: string): Buffer {
  const h = escapeHtml(host);
  const p = path === "/" ? "" : `<p>Path: <code>${escapeHtml(path)}</code></p>\n`;
  return Buffer.from(
    `<!doctype html>\n<html><head><meta charset="utf-8"><title>${h}</title></head>\n` +
      `<body><h1>${h}</h1>\n<p>This is the chokepoint lab world's stand-in for ${h}.</p>\n${p}</body></html>\n`,
  );
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function send(res: Res, status: number, type: string, body: Buffer | string): void {
  const buf = typeof body === "string" ? Buffer.from(body) : body;
  (res as ServerResponse).writeHead(status, { "content-type": type, "content-length": buf.length, server: "chokepoint-world" });
  res.end(buf);
}

export function echoText(req: Req): string {
  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) lines.push(`${raw[i]}: ${raw[i + 1]}`);
  return `${lines.join("\r\n")}\r\n`;
}

export function servePage(req: Req, res: Res): void {
  (res as ServerResponse).sendDate = false; // same bytes every run
  let url = req.url ?? "/";
  // Absolute-form targets (later requests on a proxied keep-alive connection) name the path too.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    try { const u = new URL(url); url = `${u.pathname}${u.search}`; } catch { /* served as the site page */ }
  }
  const path = url.split("?")[0] ?? "/";
  const host = requestHost(req);
  let m: RegExpExecArray | null;
  if ((m = /^\/bytes\/(\d{1,14})$/.exec(path))) {
    const n = Number(m[1]);
    if (n > MAX_BYTES) return send(res, 400, "text/plain", "too many bytes\n");
    (res as ServerResponse).writeHead(200, { "content-type": "application/octet-stream", "content-length": n, server: "chokepoint-world" });
    return streamBytes(res, n);
  }
  if (path === "/echo") return send(res, 200, "text/plain; charset=utf-8", echoText(req));
  if ((m = /^\/status\/(\d{3})$/.exec(path))) {
    const code = Number(m[1]);
    if (code < 200 || code > 599) return send(res, 400, "text/plain", "status must be 200-599\n");
    return send(res, code, "text/plain", `status ${code}\n`);
  }
  if (req.method !== "GET" && req.method !== "HEAD" && req.method !== "POST") return send(res, 405, "text/plain", "method not allowed\n");
  send(res, 200, "text/html; charset=utf-8", sitePage(host, path));
}

function streamBytes(res: Res, n: number): void {
  let left = n;
  const pump = (): void => {
    while (left > 0) {
      const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
      left -= chunk.length;
      if (!(res as ServerResponse).write(chunk)) {
        (res as ServerResponse).once("drain", pump);
        return;
      }
    }
    res.end();
  };
  res.on("close", () => (left = 0));
  pump();
}
