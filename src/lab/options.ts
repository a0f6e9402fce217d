// Options of a lab run, shared by startLab() and `chokepoint up`.
import type { Profile } from "../profile/model.js";
import type { TimeSource } from "../clock/clock.js";

export interface LabOptions {
  /** Profile ids, files, or profiles built in code; loaded in this order (precedence). */
  profiles?: (string | Profile)[];
  /** Add every profile of this country whose period covers the start instant (time travel). */
  country?: string;
  /** Variant to resolve (profiles that have it). */
  variant?: string;
  /** Network of clients that do not name one (default: the first profile's first network). */
  network?: string;
  /** Pin lab time (ISO text, epoch ms or Date). */
  at?: string | number | Date;
  /** Replay from this instant at `speed`. */
  from?: string | number | Date;
  speed?: number;
  /**
   * "auto" (the library's default): ephemeral ports; "default": the documented ports
   * (resolver 1053, HTTP proxy 3128, SOCKS5 1080, relay 5222, SMS 13013, control 8470; the CLI's
   * default); a number: base port, the parts on consecutive ports from it.
   */
  ports?: "auto" | "default" | number;
  /** Listen address (default 127.0.0.1). */
  listen?: string;
  /**
   * Explicit mode: your own servers (a Tor bridge, a proxy, a VPN endpoint on loopback) put
   * into the lab world under a name, reached through the censor and judged like any site.
   */
  services?: { name: string; host: string; port: number }[];
  /** Append events to this JSON Lines file. */
  events?: string;
  /** Rotate the events file past this many bytes (FILE -> FILE.1); default: no limit. */
  eventsMaxBytes?: number;
  /** Names the control API may be reached by, besides loopback names and the listen address (its Host check). */
  controlHosts?: string[];
  /** Also serve the control API on this unix socket (transparent mode: commands in the namespaces reach it through the file system). */
  controlSocket?: string;
  /** Connections at once per TCP listener, and in all (defaults in runtime/limits.ts). */
  maxConnections?: { perListener?: number; total?: number };
  world?: "lab" | "internet";
  /** Processes answering DNS over UDP (default 1: the lab's own); more spread the load over cores. */
  dnsWorkers?: number;
  /**
   * --world internet: address prefixes a client may reach besides public addresses (loopback,
   * private, link-local and the like are refused otherwise; the lab's own listeners always).
   */
  allowUpstream?: string[];
  /** The proxies' password (username = network); made up and shown when --world internet listens beyond loopback. */
  proxyPassword?: string;
  /** Upstream resolver for --world internet (default: the first in /etc/resolv.conf). */
  upstream?: string;
  /** Config directory (lab CA and state); default ~/.chokepoint. */
  confdir?: string;
  /** Extra seed directories (the project's seeds/ is always loaded). */
  seedDirs?: string[];
  /** Real-time source for the lab clock (tests). */
  timeSource?: TimeSource;
  /** Stop the lab and exit 0 on SIGINT/SIGTERM (the CLI sets this). */
  handleSignals?: boolean;
  /**
   * Transparent mode (Linux, root): this process runs in the censor namespace of `plan`
   * (src/transparent/topology.ts); it answers DNS on each link, takes TCP by TPROXY and
   * starts the origin in the world namespace. Set by `chokepoint exec` / `up --transparent`.
   */
  transparent?: { plan: import("../transparent/topology.js").Plan };
  /**
   * Gateway mode (Linux, NET_ADMIN; the Docker image's): this process's network namespace is
   * the gateway of these client subnets (src/transparent/gateway.ts); `services` are the only
   * other subnets the censor connects to for its clients. Set by `chokepoint up --gateway`.
   */
  gateway?: {
    clients: import("../transparent/gateway.js").GatewayClients[]; services?: string[];
    /** proxy or onpath; default: onpath for a profile with a box model (as transparent mode chooses). */
    datapath?: "proxy" | "onpath";
  };
  /**
   * The control API and live view (default on, port 8470 or ephemeral with ports "auto").
   * Bound beyond loopback it needs a token: `controlToken`, else one is made up (lab.controlToken).
   */
  control?: boolean;
  controlToken?: string;
  /** Progress of long work (loading lists, compiling). */
  onProgress?: (what: string, done: number, total: number) => void;
}

export interface Endpoint { host: string; port: number }
export interface Endpoints {
  /** Listeners of the default network. */
  dns?: Endpoint;
  httpProxy?: Endpoint;
  socks?: Endpoint;
  relay?: Endpoint;
  sms?: Endpoint;
  control?: Endpoint;
  /** The control API's unix socket (controlSocket). */
  controlSocket?: string;
  /** Transparent mode: the TPROXY listener in the censor namespace. */
  transparent?: Endpoint;
  /** Listeners of the other networks of the active profiles (a client's network is the listener it uses). */
  networks?: Record<string, { dns?: Endpoint; httpProxy?: Endpoint; socks?: Endpoint }>;
}
