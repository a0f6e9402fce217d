// Per-request mode: when a profile has URL-path rules for a host (Gmail attachments, Google
// Translate's URL feature), each HTTP request on the connection is judged, and allowed ones
// are forwarded through http-proxy-3 with a keep-alive agent. Other flows are spliced raw.
import { Agent, createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { blockPage } from "./page.js";
import type { Socket } from "node:net";
import { createProxyServer } from "http-proxy-3";
import type { LabContext } from "../runtime/context.js";
import type { Destination } from "./upstream.js";
import { judge } from "../runtime/judge.js";
import { assertNever, streamEnactment } from "../profile/actions.js";

export interface RequestContext { dst: Destination; network: string; client: string; flow: string; entry: string; hold: (s: Socket, ms?: number, then?: () => void) => void }

const contexts = new WeakMap<Socket, RequestContext>();

export class PerRequest {
  private readonly server: Server;
  private readonly proxy = createProxyServer({ agent: new Agent({ keepAlive: true, maxSockets: 256 }), xfwd: false, changeOrigin: false });
  requests = 0;

  constructor(private readonly lab: LabContext, private readonly target: (dst: Destination) => { url: string; agent?: Agent | undefined }) {
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on("clientError", (_e, s: Socket) => s.destroy());
    this.proxy.on("error", (_e, _req, res) => {
      const r = res as ServerResponse;
      if (r && !r.headersSent && typeof r.writeHead === "function") r.writeHead(502).end();
    });
  }

  /** Takes over a client connection whose first bytes (`first`, already read) were an HTTP request. */
  take(socket: Socket, first: Buffer, ctx: RequestContext): void {
    contexts.set(socket, ctx);
    socket.unshift(first);
    this.server.emit("connection", socket);
    socket.resume();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const ctx = contexts.get(req.socket);
    if (!ctx) { res.writeHead(500).end(); return; }
    this.requests++;
    const flow = `${ctx.flow}/${this.requests}`;
    // Later requests through an explicit proxy come in absolute form: judge (and forward) the path.
    let path = req.url ?? "/";
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
      try { const u = new URL(path); path = `${u.pathname}${u.search}`; req.url = path; } catch { /* judged as sent */ }
    }
    delete req.headers["proxy-authorization"];
    delete req.headers["proxy-connection"];
    const obs = { ip: ctx.dst.ip, port: ctx.dst.port, transport: "tcp" as const, protocol: "http", host: req.headers.host ?? ctx.dst.host ?? ctx.dst.ip, path, method: req.method ?? "GET", flow };
    const { flow: _f, ...logged } = obs;
    const verdict = judge(this.lab, obs, ctx.network, () => ({
      component: "interceptor", client: ctx.client, flow, observation: { ...logged, entry: ctx.entry }, detail: { stage: "request" },
    }));
    const a = verdict.action;
    const how = streamEnactment(a);
    switch (how) {
      // Per-request mode forwards what the stream would carry; a throttle or MITM of the
      // connection as a whole is the connection-level stage's business.
      case "pass": case "throttle": case "mitm": {
        let target: { url: string; agent?: Agent | undefined };
        try {
          target = this.target(ctx.dst);
        } catch {
          res.writeHead(502).end();
          return;
        }
        this.proxy.web(req, res, { target: target.url, ...(target.agent ? { agent: target.agent } : {}) });
        return;
      }
      case "page":
        if (a.type !== "blockpage") { req.socket.resetAndDestroy(); return; }
        if (a.holdMs) { // held, then the page and a FIN (blockpage's hold)
          ctx.hold(req.socket, a.holdMs, () => req.socket.end(blockPage(a)));
          return;
        }
        res.writeHead(a.status, a.reason ?? "", { "Content-Type": "text/html; charset=utf-8", ...a.headers }).end(a.body);
        return;
      case "reset": req.socket.resetAndDestroy(); return;
      case "close": req.socket.end(); return;
      // A TLS alert has no meaning inside plain HTTP: the request goes unanswered.
      case "alert": case "silence": ctx.hold(req.socket); return;
      default: assertNever(how, "stream enactment");
    }
  }
}
