// A testcontainers (11) module for users' own tests: the lab in a container that is the
// gateway of a network of its own, the explicit-mode ports mapped on the host, the lab CA
// and the event log. Imported as `chokepoint/testcontainers`; testcontainers is a peer
// dependency, needed only here.
//
//   const lab = await new ChokepointContainer().withProfile("kz-2012-tor-dpi").withAt("2012-03-15").start();
//   const tool = await (await lab.attach(new GenericContainer("my-tool"))).start();
import { GenericContainer, Network, Wait, type StartedNetwork, type StartedTestContainer } from "testcontainers";
import { fileURLToPath } from "node:url";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { LabEvent } from "../events/types.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
/** The images this package builds (docker/Dockerfile, docker/client.Dockerfile) when they are missing. */
export const LAB_IMAGE = `chokepoint:${VERSION}`;
export const CLIENT_IMAGE = `chokepoint-client:${VERSION}`;
const EVENTS = "/var/log/chokepoint/events.jsonl";
const CA = "/var/lib/chokepoint/ca/lab.pem";
const PORTS = { dns: 1053, httpProxy: 3128, socks: 1080, relay: 5222, sms: 13013, control: 8470 } as const;

export interface Endpoint { host: string; port: number }

/** Builds `image` from this package's Dockerfile, or reuses it (the engine caches the layers). */
async function ensureImage(image: string, dockerfile: string): Promise<void> {
  if (!existsSync(join(ROOT, dockerfile))) throw new Error(`${dockerfile} is missing from ${ROOT}: pass an image you built (withImage)`);
  await GenericContainer.fromDockerfile(ROOT, dockerfile).withCache(true).build(image, { deleteOnExit: false });
}

export class ChokepointContainer {
  private image: string | undefined;
  private clientImage: string | undefined;
  private readonly env: Record<string, string> = {};
  private readonly profiles: string[] = [];
  private startupTimeoutMs = 60_000;

  /** A profile to activate (repeatable; first match wins in this order). */
  withProfile(id: string): this { this.profiles.push(id); return this; }
  /** Pins lab time (ISO date or date-time, e.g. 2012-03-15 or 2014-02-13T17:30:00+06:00). */
  withAt(instant: string): this { this.env.AT = instant; return this; }
  /** Replays from an instant, `speed` lab seconds per second. */
  withFrom(instant: string, speed?: number): this {
    this.env.FROM = instant;
    if (speed !== undefined) this.env.SPEED = String(speed);
    return this;
  }
  /** Every profile of a country in force at withAt/withFrom (time travel). */
  withCountry(cc: string): this { this.env.COUNTRY = cc; return this; }
  withVariant(name: string): this { this.env.VARIANT = name; return this; }
  /** The lab network whose regime the attached containers live under (default: the first profile's first). */
  withNetwork(id: string): this { this.env.NETWORK = id; return this; }
  /** How the censor is crossed: "onpath" (the box reads packets; the default for a profile with a box model) or "proxy". */
  withDatapath(d: "proxy" | "onpath"): this { this.env.DATAPATH = d; return this; }
  /** Use an image you built or pulled instead of building this package's. */
  withImage(image: string, clientImage?: string): this {
    this.image = image;
    if (clientImage) this.clientImage = clientImage;
    return this;
  }
  withStartupTimeout(ms: number): this { this.startupTimeoutMs = ms; return this; }

  async start(): Promise<StartedChokepointContainer> {
    if (!this.profiles.length && !this.env.COUNTRY) throw new Error("name a regime: withProfile(id) or withCountry(cc).withAt(instant)");
    const image = this.image ?? LAB_IMAGE;
    if (!this.image) await ensureImage(image, "docker/Dockerfile");
    const network = await new Network().start();
    const token = randomBytes(16).toString("hex");
    try {
      const container = await new GenericContainer(image)
        .withNetwork(network)
        // Gateway mode: TPROXY and nftables inside the container's own network namespace.
        .withUser("root")
        .withAddedCapabilities("NET_ADMIN", "NET_RAW")
        .withEnvironment({ ...this.env, PROFILE: this.profiles.join(","), GATEWAY: "auto", CONTROL_TOKEN: token })
        // Every port the image exposes (with Podman, testcontainers waits for all of them).
        // DNS over TCP only: testcontainers keeps one protocol per port number.
        .withExposedPorts(...Object.values(PORTS))
        .withWaitStrategy(Wait.forLogMessage(/Ctrl-C stops the lab/))
        .withStartupTimeout(this.startupTimeoutMs)
        .start();
      const ca = (await container.exec(["cat", CA])).output;
      if (!ca.includes("BEGIN CERTIFICATE")) throw new Error(`the lab container has no CA at ${CA}: ${ca.slice(0, 200)}`);
      return new StartedChokepointContainer(container, network, ca, token, this.clientImage);
    } catch (err) {
      await network.stop().catch(() => undefined);
      throw err;
    }
  }
}

export class StartedChokepointContainer {
  /** The lab's listeners (explicit mode) as mapped on this host (`dns`: DNS over TCP, e.g. dig +tcp). */
  readonly endpoints: Record<keyof typeof PORTS, Endpoint>;
  /** The censor's address on `network`: the gateway its clients must route through. */
  readonly gateway: string;
  private readonly sidecars: StartedTestContainer[] = [];

  constructor(
    /** The lab's container. */
    readonly container: StartedTestContainer,
    /** The network the lab is the gateway of (attach() puts containers behind it). */
    readonly network: StartedNetwork,
    /** The lab CA (PEM): what clients trust to reach the lab world over HTTPS. */
    readonly ca: string,
    /** The control API's token (endpoints.control; Authorization: Bearer, or ?token= for the live view). */
    readonly controlToken: string,
    private readonly clientImage: string | undefined,
  ) {
    const host = container.getHost();
    this.endpoints = Object.fromEntries(Object.entries(PORTS).map(([k, port]) => [k, { host, port: container.getMappedPort(port) }])) as Record<keyof typeof PORTS, Endpoint>;
    this.gateway = container.getIpAddress(network.getName());
  }

  /** A started client-tools container on the network, routed through the censor, trusting the lab CA. */
  private async client(): Promise<StartedTestContainer> {
    const image = this.clientImage ?? CLIENT_IMAGE;
    if (!this.clientImage) await ensureImage(image, "docker/client.Dockerfile");
    return new GenericContainer(image)
      .withNetwork(this.network)
      .withAddedCapabilities("NET_ADMIN")
      .withEnvironment({ CHOKEPOINT_GATEWAY: this.gateway, CHOKEPOINT_CA: "/etc/chokepoint/ca/lab.pem" })
      .withCopyContentToContainer([{ content: this.ca, target: "/etc/chokepoint/ca/lab.pem" }])
      .withCommand(["sleep", "infinity"])
      .withWaitStrategy(Wait.forLogMessage(/chokepoint-client: ready/))
      .start();
  }

  /**
   * Puts a container of yours behind the censor, with no changes to its image: it shares
   * the network namespace of a small helper container (the client-tools image) whose
   * default route and resolver are the censor. Returns the container, ready to start.
   */
  async attach<C extends GenericContainer>(container: C): Promise<C> {
    const sidecar = await this.client();
    this.sidecars.push(sidecar);
    return container.withNetworkMode(`container:${sidecar.getId()}`);
  }

  /**
   * Runs a command in a client-tools container behind the censor (curl, dig, openssl, tor),
   * which trusts the lab CA; stops the container again.
   */
  async run(cmd: string[]): Promise<{ exitCode: number; output: string }> {
    const c = await this.client();
    try {
      const r = await c.exec(cmd);
      return { exitCode: r.exitCode, output: r.output };
    } finally {
      await c.stop();
    }
  }

  /** Calls the lab's control API (e.g. "POST", "v1/clock", {seek: "2012-03-15T12:00:00Z"}). */
  async control(method: "GET" | "POST", path: string, body?: unknown): Promise<unknown> {
    const { host, port } = this.endpoints.control;
    const res = await fetch(`http://${host}:${port}/${path.replace(/^\//, "")}`, {
      method, headers: { authorization: `Bearer ${this.controlToken}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const v = await res.json() as { error?: string };
    if (!res.ok) throw new Error(`control API ${method} ${path}: ${res.status} ${v.error ?? ""}`);
    return v;
  }

  /** The event log so far (the lab writes it within 100 ms of each decision). */
  async events(): Promise<LabEvent[]> {
    const r = await this.container.exec(["cat", EVENTS]);
    if (r.exitCode !== 0) return [];
    return r.output.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as LabEvent);
  }

  /** Waits until an event matches (polling the log), or throws after `timeoutMs`. */
  async waitForEvent(match: (e: LabEvent) => boolean, timeoutMs = 10_000): Promise<LabEvent> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hit = (await this.events()).find(match);
      if (hit) return hit;
      if (Date.now() > until) throw new Error(`no matching event in the lab's log within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.sidecars.splice(0).map((s) => s.stop().catch(() => undefined)));
    await this.container.stop();
    await this.network.stop();
  }
}
