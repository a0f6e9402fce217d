// The control API (HTTP JSON, after Toxiproxy's) and the live view, on one port (8470 by
// default, loopback). Steers a running lab from a test: status, the event stream (SSE),
// the clock, the active profiles, reset. Bound beyond loopback, every request needs the
// token (Authorization: Bearer, or ?token= for the browser's EventSource).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { timingSafeEqual } from "node:crypto";
import { chmodSync, unlinkSync } from "node:fs";
import type { Lab } from "../lab/lab.js";
import type { LabEvent } from "../events/types.js";
import { eventLine } from "../events/log.js";
import { parseInstant } from "../util/time.js";
import { OPENAPI } from "./openapi.js";
import { scanProfiles } from "../profile/catalog.js";
import { suggest } from "../util/yaml-source.js";
import { canonicalAddress } from "../util/address.js";
import { networkInterfaces } from "node:os";
import { HttpError } from "./http-error.js";
import { story } from "./story.js";
import { tryIt } from "./try.js";
import { testHelper } from "./th.js";
import { serveView } from "./view.js";
import { serveCa } from "./ca-page.js";

const MAX_BODY = 64 * 1024;
const HEARTBEAT_MS = 15_000;
/** Bytes of events a stream's reader may leave unread; past that the lab drops the reader (a counter says so). */
export const MAX_UNREAD = 1 << 20;
/** Event streams open at once (each a live view or a test). */
export const MAX_STREAMS = 64;
/** Connections to the control port at once. */
export const MAX_CONNECTIONS = 256;

export interface ControlOptions {
  token?: string;
  /** Names this API may be reached by besides loopback names and the listen address (Host header; --control-host). */
  hosts?: string[];
  /** The address it listens on (a wildcard: every address of this host). */
  listen?: string;
}

export { HttpError };

export interface ControlStats { requests: number; badRequests: number; unauthorized: number; forbidden: number; streams: number; droppedEvents: number; slowReadersDropped: number; streamsRefused: number }

export class ControlServer {
  readonly server: Server;
  readonly stats: ControlStats = { requests: 0, badRequests: 0, unauthorized: 0, forbidden: 0, streams: 0, droppedEvents: 0, slowReadersDropped: 0, streamsRefused: 0 };
  private readonly streams = new Set<ServerResponse>();
  private readonly token: string | undefined;
  private readonly hosts: Set<string>;

  constructor(private readonly labOf: () => Lab | undefined, opts: ControlOptions | string = {}) {
    const o = typeof opts === "string" ? { token: opts } : opts;
    this.token = o.token;
    this.hosts = allowedHosts(o);
    this.server = this.newServer();
  }

  private newServer(): Server {
    const server = createServer((req, res) => void this.handle(req, res));
    // A client has 10 s to send its request head and 30 s for the whole request (trickling is closed).
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.keepAliveTimeout = 5_000;
    server.maxConnections = MAX_CONNECTIONS;
    server.on("clientError", (_err, socket) => { this.stats.badRequests++; socket.destroy(); });
    this.servers.push(server);
    return server;
  }

  /** Every listener of this API: the TCP one, and the unix socket's. */
  readonly servers: Server[] = [];

  /**
   * Serves the API on a unix socket too (transparent mode: a command in a client namespace has
   * no route to the censor's loopback, but shares the file system). The socket is made
   * owner-only; requests name it as their Host ("localhost").
   */
  async listenUnix(path: string): Promise<string> {
    const server = this.newServer();
    try { unlinkSync(path); } catch { /* not there */ }
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => { server.off("error", reject); resolve(); });
    });
    chmodSync(path, 0o600);
    return path;
  }

  /**
   * Whether a request comes from where it may: a Host that names this API (a page on another
   * site that re-binds its name to 127.0.0.1 sends its own name), and no Origin but this
   * API's own (a page elsewhere cannot drive the lab through the user's browser).
   */
  private sameSite(req: IncomingMessage): boolean {
    const host = hostName(req.headers.host);
    if (host === undefined || !this.hosts.has(host)) return false;
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    try {
      const u = new URL(origin);
      return u.protocol === "http:" && this.hosts.has(hostName(u.host)!) && u.host === req.headers.host;
    } catch {
      return false;
    }
  }

  private get lab(): Lab {
    const lab = this.labOf();
    if (!lab) throw new HttpError(503, "the lab is still starting");
    return lab;
  }

  close(): void {
    for (const s of this.streams) s.end();
    this.streams.clear();
  }

  private authorized(req: IncomingMessage, url: URL): boolean {
    if (!this.token) return true;
    const given = (req.headers.authorization?.replace(/^Bearer\s+/i, "") ?? url.searchParams.get("token") ?? "");
    const a = Buffer.from(given), b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.requests++;
    const url = new URL(req.url ?? "/", "http://control");
    try {
      if (!this.sameSite(req)) {
        this.stats.forbidden++;
        throw new HttpError(403, `requests to the control API must name it as their Host (${[...this.hosts].slice(0, 4).join(", ")}, ...; add names with --control-host) and come from its own page`);
      }
      // The page itself carries no data: it asks for the token and then uses the API with it.
      if (req.method === "GET" && !url.pathname.startsWith("/v1/")) {
        if (!serveView(url.pathname, res) && !serveCa(url.pathname, this.lab.pki, res)) throw new HttpError(404, `no page ${url.pathname}`);
        return;
      }
      if (!this.authorized(req, url)) {
        this.stats.unauthorized++;
        throw new HttpError(401, "this control API is bound beyond loopback: send its token (Authorization: Bearer TOKEN, or ?token=TOKEN)");
      }
      const route = `${req.method} ${url.pathname}`;
      switch (route) {
        case "GET /v1/status": return json(res, 200, { ...this.lab.status(), control: this.stats });
        case "GET /v1/events": return this.events(req, res, url);
        case "POST /v1/clock": return json(res, 200, this.clock(await body(req)));
        case "GET /v1/profiles": return json(res, 200, story(this.lab));
        case "POST /v1/profiles": return json(res, 200, await this.profiles(await body(req)));
        case "POST /v1/tag": return json(res, 200, this.tag(await body(req)));
        case "POST /v1/reset": return json(res, 200, { ok: true, cleared: this.lab.reset() });
        case "POST /v1/try": return json(res, 200, await tryIt(this.lab, await body(req)));
        // The control vantage, at OONI's path (a test helper's root) and under /v1.
        case "POST /":
        case "POST /v1/th": return json(res, 200, await testHelper(this.lab, await body(req)));
        case "GET /v1/openapi.json": return json(res, 200, OPENAPI);
        default:
          throw new HttpError(OPENAPI.paths[url.pathname as keyof typeof OPENAPI.paths] ? 405 : 404, `no ${route} (GET /v1/openapi.json lists the API)`);
      }
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 400;
      if (status === 400) this.stats.badRequests++;
      if (!res.headersSent) json(res, status, { ok: false, error: (err as Error).message });
      else res.end();
    }
  }

  /** POST /v1/clock: {"seek": ISO} | {"speed": N} | {"pause": true|false}, one or more. */
  private clock(b: Record<string, unknown>): unknown {
    const keys = Object.keys(b).filter((k) => ["seek", "speed", "pause"].includes(k));
    if (!keys.length) throw new HttpError(400, 'expected {"seek": "<ISO instant>"}, {"speed": N} or {"pause": true|false}');
    const c = this.lab.clock;
    if (b.speed !== undefined) {
      if (typeof b.speed !== "number") throw new HttpError(400, `speed must be a number, got ${JSON.stringify(b.speed)}`);
      c.setSpeed(b.speed); // its range is the clock's (a RangeError answers 400)
    }
    if (b.seek !== undefined) {
      const t = typeof b.seek === "string" ? parseInstant(b.seek, this.lab.profiles[0]?.timezone ?? "UTC") : undefined;
      if (t === undefined) throw new HttpError(400, `seek needs an ISO instant (e.g. 2014-02-13T17:30:00+06:00), got ${JSON.stringify(b.seek)}`);
      this.lab.seek(t);
    }
    if (b.pause !== undefined) {
      if (typeof b.pause !== "boolean") throw new HttpError(400, "pause must be true or false");
      if (b.pause) c.pause(); else c.resume();
    }
    return { ok: true, labTime: new Date(c.now()).toISOString(), speed: c.speed, paused: c.paused, mode: c.mode };
  }

  /** POST /v1/tag: {"client": ADDRESS, "tag": ID | null, "ttl"?: seconds}: the events about this client's next flows carry the tag. */
  private tag(b: Record<string, unknown>): unknown {
    const client = typeof b.client === "string" ? canonicalAddress(b.client) : undefined;
    if (!client) throw new HttpError(400, `client must be the client's IP address (as the lab sees it: its address in its namespace, 127.0.0.1 on loopback), got ${JSON.stringify(b.client)}`);
    if (b.tag !== null && (typeof b.tag !== "string" || !/^[A-Za-z0-9._:-]{1,64}$/.test(b.tag))) throw new HttpError(400, `tag must be 1-64 of A-Z a-z 0-9 . _ : - (or null to clear), got ${JSON.stringify(b.tag)}`);
    const ttl = b.ttl === undefined ? 600 : b.ttl;
    if (typeof ttl !== "number" || !(ttl > 0 && ttl <= 86_400)) throw new HttpError(400, `ttl is seconds from 1 to 86400, got ${JSON.stringify(b.ttl)}`);
    try {
      this.lab.eventLog.tagClient(client, b.tag === null ? undefined : b.tag, ttl * 1000);
    } catch (err) {
      throw new HttpError(429, (err as Error).message);
    }
    return { ok: true, client, tag: b.tag, ...(b.tag === null ? {} : { until: new Date(Date.now() + ttl * 1000).toISOString() }) };
  }

  /** POST /v1/profiles: {"activate": ID, "variant"?: NAME} | {"deactivate": ID} | {"variant": NAME, "profile"?: ID}. */
  private async profiles(b: Record<string, unknown>): Promise<unknown> {
    const str = (k: string): string | undefined => {
      if (b[k] === undefined) return undefined;
      if (typeof b[k] !== "string" || !b[k]) throw new HttpError(400, `${k} must be a profile id or variant name`);
      return b[k] as string;
    };
    const activate = str("activate"), deactivate = str("deactivate"), variant = str("variant"), profile = str("profile");
    // By id from the catalog only: a path would let any client read files through the loader's errors.
    for (const id of [activate, profile].filter((x): x is string => !!x)) {
      if (!scanProfiles().some((p) => p.id === id)) {
        const near = suggest(id, scanProfiles().map((p) => p.id));
        throw new HttpError(400, `no profile "${id}" in the catalog${near.length ? ` (did you mean ${near.map((n) => `"${n}"`).join(", ")}?)` : ""}; the control API activates profiles by id (chokepoint list); add directories with --profiles-dir`);
      }
    }
    if (activate) await this.lab.activate(activate, variant);
    else if (deactivate) await this.lab.deactivate(deactivate);
    else if (variant) {
      const targets = profile ? [profile] : this.lab.profiles.filter((p) => Object.keys(p.variants).includes(variant)).map((p) => p.id);
      if (!targets.length) throw new HttpError(400, `no active profile offers a variant "${variant}"`);
      for (const id of targets) await this.lab.activate(id, variant);
    } else {
      throw new HttpError(400, 'expected {"activate": ID, "variant"?: NAME}, {"deactivate": ID} or {"variant": NAME, "profile"?: ID}');
    }
    return { ok: true, active: this.lab.status().profiles };
  }

  /** GET /v1/events: Server-Sent Events, filtered by component, action and network (comma lists). */
  private events(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const filter = (k: string): Set<string> | undefined => {
      const v = url.searchParams.get(k);
      return v ? new Set(v.split(",").map((x) => x.trim()).filter(Boolean)) : undefined;
    };
    const component = filter("component"), action = filter("action"), network = filter("network");
    if (this.streams.size >= MAX_STREAMS) {
      this.stats.streamsRefused++;
      throw new HttpError(503, `${MAX_STREAMS} event streams are open already; close one`);
    }
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", connection: "keep-alive" });
    res.write(`: chokepoint events${component || action || network ? " (filtered)" : ""}\n\n`);
    // ?history=N: the last N decisions that pass the filters first (a page opened late still has its list).
    const history = Math.min(200, Math.max(0, Number(url.searchParams.get("history") ?? 0) || 0));
    this.stats.streams++;
    this.streams.add(res);
    // Frames are gathered and written once per turn of the event loop: a burst of decisions
    // costs one write, not one each.
    let batch: string[] = [];
    const flush = (): void => {
      const frames = batch;
      batch = [];
      if (res.writableEnded || res.destroyed) return;
      // A reader that stopped reading is dropped (its buffers freed), rather than growing the lab's memory.
      if (res.writableLength > MAX_UNREAD) {
        this.stats.droppedEvents += frames.length;
        this.stats.slowReadersDropped++;
        res.destroy();
        return;
      }
      res.write(frames.join(""));
    };
    const send = (e: LabEvent, line: () => string): void => {
      if (component && !component.has(e.component)) return;
      if (action && !action.has(e.action)) return;
      if (network && !network.has(e.network ?? "")) return;
      if (!batch.length) setImmediate(flush);
      batch.push(`event: decision\ndata: ${line()}\n\n`);
    };
    const passes = (e: LabEvent): boolean => (!component || component.has(e.component)) && (!action || action.has(e.action)) && (!network || network.has(e.network ?? ""));
    if (history) for (const e of this.lab.eventLog.recent().filter(passes).slice(-history)) send(e, () => eventLine(e));
    const unsubscribe = this.lab.eventLog.subscribe(send);
    const beat = setInterval(() => res.write(": keep-alive\n\n"), HEARTBEAT_MS).unref();
    const done = (): void => { unsubscribe(); clearInterval(beat); this.streams.delete(res); };
    req.on("close", done);
    res.on("close", done);
  }
}

/** The host part of a Host header (or URL host), lower-case, brackets kept off, addresses canonical. */
function hostName(h: string | undefined): string | undefined {
  if (!h) return undefined;
  const m = /^\[([^\]]+)\](?::\d+)?$|^([^:]+)(?::\d+)?$/.exec(h.trim());
  const name = (m?.[1] ?? m?.[2])?.toLowerCase();
  return name === undefined ? undefined : canonicalAddress(name) ?? name;
}

/** Loopback names, the listen address (or every address of this host for a wildcard), and the configured names. */
function allowedHosts(o: ControlOptions): Set<string> {
  const out = new Set(["localhost", "127.0.0.1", "::1", ...(o.hosts ?? []).map((h) => hostName(h)!).filter(Boolean)]);
  const listen = o.listen ?? "127.0.0.1";
  if (listen === "0.0.0.0" || listen === "::") {
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(canonicalAddress(a.address) ?? a.address);
  } else out.add(canonicalAddress(listen) ?? listen.toLowerCase());
  return out;
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value, null, 2);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8").trim();
  if (!text) return {};
  let v: unknown;
  try { v = JSON.parse(text); } catch (err) { throw new HttpError(400, `the body is not JSON: ${(err as Error).message}`); }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new HttpError(400, "the body must be a JSON object");
  return v as Record<string, unknown>;
}
