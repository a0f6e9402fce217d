// Public DoH resolvers as stand-ins in the world: RFC 8484 (GET ?dns=, POST
// application/dns-message) and the JSON APIs of dns.google (/resolve) and Cloudflare
// (/dns-query with accept: application/dns-json). They answer from the world, so DoH
// bypasses a censoring resolver unless a regime blocks these names.
import type { ServerResponse } from "node:http";
import { RCODE, encodeResponse, parseQuery, typeName } from "../dns/wire.js";
import type { World } from "./world.js";
import type { Req, Res } from "./pages.js";

export const DOH_HOSTS = new Set(["dns.google", "dns.google.com", "cloudflare-dns.com", "mozilla.cloudflare-dns.com", "one.one.one.one"]);

const TYPE_NUM: Record<string, number> = { A: 1, AAAA: 28, TXT: 16, HTTPS: 65, CNAME: 5, MX: 15, NS: 2, ANY: 255 };

function send(res: Res, status: number, type: string, body: Buffer | string): void {
  const buf = typeof body === "string" ? Buffer.from(body) : body;
  (res as ServerResponse).writeHead(status, { "content-type": type, "content-length": buf.length, server: "chokepoint-world", "cache-control": "max-age=0" });
  res.end(buf);
}

function wireAnswer(world: World, query: Buffer): Buffer {
  const p = parseQuery(query);
  if (!p.ok) {
    if ("drop" in p) throw new Error(p.reason);
    return encodeResponse(p.query ?? { id: p.id, opcode: p.opcode, rd: p.rd }, { rcode: p.rcode });
  }
  const q = p.query;
  const a = world.answer(q.name, q.qtype === 255 ? "ANY" : typeName(q.qtype));
  return encodeResponse(q, { rcode: a.rcode === "NXDOMAIN" ? RCODE.NXDOMAIN : RCODE.NOERROR, answers: a.answers });
}

function jsonAnswer(world: World, name: string, type: string): string {
  const t = /^\d+$/.test(type) ? (Object.entries(TYPE_NUM).find(([, n]) => String(n) === type)?.[0] ?? "A") : type.toUpperCase();
  const a = world.answer(name, t);
  return JSON.stringify({
    Status: a.rcode === "NXDOMAIN" ? 3 : 0, TC: false, RD: true, RA: true, AD: false, CD: false,
    Question: [{ name, type: TYPE_NUM[t] ?? 1 }],
    ...(a.answers.length ? { Answer: a.answers.map((r) => ({ name, type: TYPE_NUM[r.type], TTL: r.ttl, data: r.address })) } : {}),
  });
}

export function serveDoh(world: World, req: Req, res: Res): void {
  const url = new URL(req.url ?? "/", "https://doh.invalid");
  const accept = String(req.headers.accept ?? "");
  try {
    if ((url.pathname === "/resolve" || (url.pathname === "/dns-query" && accept.includes("dns-json"))) && url.searchParams.get("name")) {
      return send(res, 200, "application/dns-json", jsonAnswer(world, url.searchParams.get("name")!, url.searchParams.get("type") ?? "A"));
    }
    if (url.pathname !== "/dns-query") return send(res, 404, "text/plain", "not found\n");
    if (req.method === "GET") {
      const b64 = url.searchParams.get("dns");
      if (!b64) return send(res, 400, "text/plain", "missing dns parameter\n");
      return send(res, 200, "application/dns-message", wireAnswer(world, Buffer.from(b64, "base64url")));
    }
    if (req.method === "POST") {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (c: Buffer) => {
        size += c.length;
        if (size > 65535) req.destroy();
        else chunks.push(c);
      });
      req.on("end", () => {
        try {
          send(res, 200, "application/dns-message", wireAnswer(world, Buffer.concat(chunks)));
        } catch {
          send(res, 400, "text/plain", "malformed DNS message\n");
        }
      });
      return;
    }
    send(res, 405, "text/plain", "method not allowed\n");
  } catch {
    send(res, 400, "text/plain", "malformed DNS message\n");
  }
}
