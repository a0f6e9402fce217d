// IP_TRANSPARENT from Node: one setsockopt on a listening socket, so that TPROXY can hand it
// connections addressed to anywhere. koffi (a prebuilt FFI from npm, no compiler on the user's
// machine) calls libc's setsockopt; it is loaded only in transparent mode.
import { createRequire } from "node:module";
import type { Server } from "node:net";

const SOL_IP = 0;
const IP_TRANSPARENT = 19;
const SOL_IPV6 = 41;
const IPV6_TRANSPARENT = 75;

type SetSockOpt = (fd: number, level: number, name: number, value: number[], len: number) => number;
let setsockopt: SetSockOpt | undefined;

function libc(): SetSockOpt {
  if (setsockopt) return setsockopt;
  const require = createRequire(import.meta.url);
  let koffi: { load(name: string): { func(sig: string): SetSockOpt } };
  try {
    koffi = require("koffi") as typeof koffi;
  } catch (err) {
    throw new Error(`transparent mode needs the koffi package (npm install koffi): ${(err as Error).message}`);
  }
  setsockopt = koffi.load("libc.so.6").func("int setsockopt(int, int, int, _In_ int *, uint32_t)");
  return setsockopt;
}

/** The file descriptor under a listening net.Server (Linux). */
function fdOf(server: Server): number {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== "number" || fd < 0) throw new Error("the server has no file descriptor yet (listen first)");
  return fd;
}

/**
 * Marks a listening server IP_TRANSPARENT (v4, and v6 for a dual-stack socket). The kernel
 * checks the flag per packet, so setting it after listen() is enough. Needs CAP_NET_ADMIN.
 */
export function setTransparent(server: Server): void {
  const fd = fdOf(server);
  const call = libc();
  const v6 = String((server.address() as { family?: string } | null)?.family) === "IPv6";
  const results = [call(fd, SOL_IP, IP_TRANSPARENT, [1], 4)];
  if (v6) results.push(call(fd, SOL_IPV6, IPV6_TRANSPARENT, [1], 4));
  if (results.some((r) => r !== 0)) {
    throw new Error("setsockopt(IP_TRANSPARENT) failed: transparent mode needs root (CAP_NET_ADMIN)");
  }
}
