// Binding listeners with errors a user can act on.
import type { Server } from "node:net";
import type { Socket as UdpSocket } from "node:dgram";

/** The documented default ports, and their order after a `--ports BASE`. */
export const DEFAULT_PORTS = { dns: 1053, httpProxy: 3128, socks: 1080, relay: 5222, sms: 13013, control: 8470 } as const;
export type Part = keyof typeof DEFAULT_PORTS;
const ORDER: Part[] = ["dns", "httpProxy", "socks", "relay", "sms", "control"];

/** The port a part listens on: 0 (ephemeral) for "auto", the default, or BASE + its offset. */
export function portFor(part: Part, ports: "auto" | "default" | number): number {
  if (ports === "auto") return 0;
  if (ports === "default") return DEFAULT_PORTS[part];
  return ports + ORDER.indexOf(part);
}

export class ListenError extends Error {}

function explain(err: NodeJS.ErrnoException, what: string, host: string, port: number): Error {
  if (err.code === "EADDRINUSE") {
    return new ListenError(`${what}: port ${port} on ${host} is in use by another program; choose other ports with --ports auto (ephemeral) or --ports BASE (e.g. --ports 20000)`);
  }
  if (err.code === "EACCES") return new ListenError(`${what}: not allowed to listen on ${host}:${port} (ports below 1024 need root); choose --ports auto or --ports BASE`);
  if (err.code === "EADDRNOTAVAIL") return new ListenError(`${what}: ${host} is not an address of this machine (--listen)`);
  return new ListenError(`${what}: cannot listen on ${host}:${port}: ${err.message}`);
}

export function listenTcp(server: Server, host: string, port: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(explain(err, what, host, port));
    server.once("error", onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off("error", onError);
      resolve((server.address() as { port: number }).port);
    });
  });
}

export function bindUdp(socket: UdpSocket, host: string, port: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(explain(err, what, host, port));
    socket.once("error", onError);
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.off("error", onError);
      resolve(socket.address().port);
    });
  });
}
