// The live view's files (view/ in the package): one page, its script and style, no CDN.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ServerResponse } from "node:http";
import { PACKAGE_ROOT } from "../paths.js";

const FILES: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
};

/** Serves a file of the view; false when the path is not one. (Read on each request: small, and edits show at once.) */
export function serveView(path: string, res: ServerResponse): boolean {
  if (path === "/favicon.ico") {
    res.writeHead(204).end();
    return true;
  }
  const f = FILES[path];
  if (!f) return false;
  const body = readFileSync(join(PACKAGE_ROOT, "view", f.file));
  res.writeHead(200, { "content-type": f.type, "content-length": body.length, "cache-control": "no-store", "content-security-policy": "default-src 'self'; style-src 'self'; img-src 'self' data:" });
  res.end(body);
  return true;
}
