// The operators' SMS centres, reached over HTTP in the style of Kannel's sendsms interface
// (explicit mode 127.0.0.1:13013):
//   GET or POST /cgi-bin/sendsms?username=<network>&password=<any>&from=<sender>&to=<number>&text=<text>
// `username` names the operator's network (as the proxies' username does); `smsc` may name it
// instead. Several recipients are separated by spaces. Answers, as Kannel words them:
//   202 "0: Accepted for delivery"   202 "3: Queued for later delivery"
//   4xx/5xx with the reason (unknown network, missing fields, the SMSC's rejection).
// An outage in silent mode is accepted and never delivered, as the record suggests.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { listenTcp } from "../runtime/listen.js";
import { MAX_TEXT, isNumber } from "./protocol.js";
import type { Relay } from "./relay.js";
import { unmap } from "../util/address.js";

const MAX_BODY = 16 * 1024;
const SENDER = /^[A-Za-z0-9+ ._-]{1,15}$/;

export class SmsGateway {
  /** The gateway's HTTP server (for the lab's connection budget). */
  readonly server: Server;
  port = 0;
  readonly stats = { requests: 0, accepted: 0, queued: 0, failed: 0, badRequests: 0 };

  constructor(private readonly relay: Relay, private readonly host: string) {
    this.server = createServer((req, res) => this.request(req, res));
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 15_000;
    this.server.on("clientError", (_e, socket) => socket.destroy());
  }

  async listen(port: number): Promise<number> {
    this.port = await listenTcp(this.server, this.host, port, "SMS gateway");
    return this.port;
  }

  private request(req: IncomingMessage, res: ServerResponse): void {
    this.stats.requests++;
    const url = new URL(req.url ?? "/", "http://gateway");
    if (url.pathname !== "/cgi-bin/sendsms") return this.answer(res, 404, "Not found: the gateway answers /cgi-bin/sendsms", true);
    if (req.method !== "GET" && req.method !== "POST") return this.answer(res, 405, "Use GET or POST", true);
    let body = "";
    let tooBig = false;
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      body += c;
      if (body.length > MAX_BODY) { tooBig = true; req.destroy(); }
    });
    req.on("end", () => {
      if (tooBig) return;
      const params = new URLSearchParams(url.search);
      if (req.method === "POST" && /application\/x-www-form-urlencoded/.test(req.headers["content-type"] ?? "")) {
        for (const [k, v] of new URLSearchParams(body)) params.set(k, v);
      }
      this.sendsms(req, res, params, req.method === "POST" && !params.has("text") ? body : undefined);
    });
    req.on("error", () => res.destroy());
  }

  private sendsms(req: IncomingMessage, res: ServerResponse, p: URLSearchParams, postedText: string | undefined): void {
    const get = (...names: string[]): string | undefined => names.map((n) => p.get(n)).find((v) => v !== null && v !== undefined) ?? undefined;
    const network = get("smsc") ?? get("username", "user");
    if (!network || !this.relay.networks.includes(network)) {
      return this.answer(res, 403, `Authorization failed for sendsms: username (or smsc) must name a network of this lab (${this.relay.networks.join(", ")})`, true);
    }
    const to = (get("to") ?? "").split(/[\s,]+/).filter(Boolean);
    if (!to.length) return this.answer(res, 400, "Missing receiver number, rejected", true);
    const bad = to.find((n) => !isNumber(n));
    if (bad) return this.answer(res, 400, `Receiver number ${JSON.stringify(bad)} is not a number, rejected`, true);
    const text = get("text") ?? postedText;
    if (text === undefined) return this.answer(res, 400, "Missing text, rejected", true);
    if (Buffer.byteLength(text) > MAX_TEXT) return this.answer(res, 413, `Text longer than ${MAX_TEXT} bytes, rejected`, true);
    const from = get("from") ?? "gateway";
    if (!SENDER.test(from)) return this.answer(res, 400, "Sender (from) must be a number or up to 15 letters and digits, rejected", true);
    const client = `${unmap(req.socket.remoteAddress)}:${req.socket.remotePort}`;
    let queued = false;
    for (const number of to) {
      const r = this.relay.submit({ from, to: number, via: "sms", text, network, client });
      if (r.status === "error") {
        this.stats.failed++;
        const status = r.httpStatus ?? (r.code === "unknown-number" ? 400 : 503);
        return this.answer(res, status, `Sending failed: ${r.message}`, false);
      }
      if (r.status === "silent" || r.status === "cut") {
        // The SMSC does not answer: the gateway's request hangs until the client gives up.
        this.stats.failed++;
        res.socket?.setTimeout(120_000, () => res.destroy());
        return;
      }
      if (r.status === "queued") queued = true;
    }
    if (queued) this.stats.queued++;
    else this.stats.accepted++;
    this.answer(res, 202, queued ? "3: Queued for later delivery" : "0: Accepted for delivery", false);
  }

  private answer(res: ServerResponse, status: number, text: string, bad: boolean): void {
    if (bad) this.stats.badRequests++;
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
    res.end(`${text}\n`);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((r) => (this.server.listening ? this.server.close(() => r()) : r()));
    this.server.closeAllConnections();
    await closed;
  }
}
