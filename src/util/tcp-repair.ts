// The server's end of a client's TCP connection, made without a handshake (TCP_REPAIR, the
// kernel interface CRIU restores connections with): a socket bound to the server's address
// (IP_TRANSPARENT: it is not ours) and connected to the client, with the sequence numbers,
// options and windows the box saw in the handshake. The kernel then carries the connection
// as if it had accepted it. Used by the on-path box to take a flow over (MITM, block pages,
// throttling) the way the real boxes did. koffi over libc, no compiler; needs CAP_NET_ADMIN.
import { load } from "./netfilter.js";

type Fn = (...a: unknown[]) => unknown;
let libc: Record<"socket" | "setsockopt" | "bind" | "connect" | "close", Fn> | undefined;

function fns(): NonNullable<typeof libc> {
  if (libc) return libc;
  const l = load("libc.so.6", "libc6");
  libc = {
    socket: l.func("int socket(int domain, int type, int protocol)"),
    setsockopt: l.func("int setsockopt(int fd, int level, int name, const uint8_t *value, uint32_t len)"),
    bind: l.func("int bind(int fd, const uint8_t *addr, uint32_t len)"),
    connect: l.func("int connect(int fd, const uint8_t *addr, uint32_t len)"),
    close: l.func("int close(int fd)"),
  };
  return libc;
}

const SOL_SOCKET = 1, SO_REUSEADDR = 2, SO_REUSEPORT = 15, SO_MARK = 36, SOL_IP = 0, IP_TRANSPARENT = 19, SOL_TCP = 6;
const TCP_REPAIR = 19, TCP_REPAIR_QUEUE = 20, TCP_QUEUE_SEQ = 21, TCP_REPAIR_OPTIONS = 22, TCP_TIMESTAMP = 24, TCP_REPAIR_WINDOW = 29;
const TCP_RECV_QUEUE = 1, TCP_SEND_QUEUE = 2;
const TCPOPT_MSS = 2, TCPOPT_WINDOW = 3, TCPOPT_SACK_PERM = 4, TCPOPT_TIMESTAMP = 8;

export interface RepairSpec {
  /** The server's address and port (the socket's local end). */
  local: { ip: string; port: number };
  /** The client's (its remote end). */
  remote: { ip: string; port: number };
  /** Our next sequence number (the server's ISN + 1 when it has sent nothing yet). */
  sendSeq: number;
  /** The next byte we expect from the client (bytes before it were handed over in-process). */
  recvSeq: number;
  /** The client's MSS. */
  mss?: number;
  /** Window scales: `snd` the client's (applied to its windows), `rcv` ours (the server's SYN/ACK). */
  wscale?: { snd: number; rcv: number };
  sackOk?: boolean;
  /** Timestamps were negotiated: our next TSval (continuing the server's, or the client drops our segments: PAWS). */
  tsval?: number;
  /** The client's last advertised window, unscaled bytes. */
  clientWindow?: number;
  /** SO_MARK on the socket's packets. */
  mark?: number;
}

const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n >>> 0); return b; };

function sockaddr(a: { ip: string; port: number }): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(2, 0); // AF_INET, host order
  b.writeUInt16BE(a.port, 2);
  a.ip.split(".").forEach((o, i) => (b[4 + i] = Number(o)));
  return b;
}

/** A connected, established TCP socket's fd as `spec` says; throws (closing it) when the kernel refuses a step. */
export function repairedSocket(spec: RepairSpec): number {
  const c = fns();
  const fd = c.socket(2, 1 | 0x80000 /* SOCK_STREAM | SOCK_CLOEXEC */, 0) as number;
  if (fd < 0) throw new Error("socket() failed");
  const opt = (level: number, name: number, value: Buffer, what: string): void => {
    if ((c.setsockopt(fd, level, name, value, value.length) as number) !== 0) throw new Error(`setsockopt(${what}) failed (the on-path box needs root: CAP_NET_ADMIN)`);
  };
  try {
    opt(SOL_TCP, TCP_REPAIR, u32(1), "TCP_REPAIR");
    opt(SOL_IP, IP_TRANSPARENT, u32(1), "IP_TRANSPARENT");
    opt(SOL_SOCKET, SO_REUSEADDR, u32(1), "SO_REUSEADDR");
    // Closed server ends of earlier takeovers may linger (LAST-ACK, their client gone): they
    // must not keep the server's address and port from the next one (its 4-tuple differs).
    opt(SOL_SOCKET, SO_REUSEPORT, u32(1), "SO_REUSEPORT");
    if (spec.mark !== undefined) opt(SOL_SOCKET, SO_MARK, u32(spec.mark), "SO_MARK");
    opt(SOL_TCP, TCP_REPAIR_QUEUE, u32(TCP_SEND_QUEUE), "TCP_REPAIR_QUEUE");
    opt(SOL_TCP, TCP_QUEUE_SEQ, u32(spec.sendSeq), "TCP_QUEUE_SEQ send");
    opt(SOL_TCP, TCP_REPAIR_QUEUE, u32(TCP_RECV_QUEUE), "TCP_REPAIR_QUEUE");
    opt(SOL_TCP, TCP_QUEUE_SEQ, u32(spec.recvSeq), "TCP_QUEUE_SEQ recv");
    const local = sockaddr(spec.local), remote = sockaddr(spec.remote);
    if ((c.bind(fd, local, 16) as number) !== 0) throw new Error(`bind(${spec.local.ip}:${spec.local.port}) failed`);
    // In repair mode connect() sends nothing: the socket is established at once.
    if ((c.connect(fd, remote, 16) as number) !== 0) throw new Error(`connect(${spec.remote.ip}:${spec.remote.port}) failed`);
    const opts: [number, number][] = [];
    if (spec.mss) opts.push([TCPOPT_MSS, spec.mss]);
    if (spec.wscale) opts.push([TCPOPT_WINDOW, (spec.wscale.snd & 0xffff) | (spec.wscale.rcv << 16)]);
    if (spec.sackOk) opts.push([TCPOPT_SACK_PERM, 0]);
    if (spec.tsval !== undefined) opts.push([TCPOPT_TIMESTAMP, 0]);
    if (opts.length) opt(SOL_TCP, TCP_REPAIR_OPTIONS, Buffer.concat(opts.flatMap(([k, v]) => [u32(k), u32(v)])), "TCP_REPAIR_OPTIONS");
    if (spec.tsval !== undefined) opt(SOL_TCP, TCP_TIMESTAMP, u32(spec.tsval), "TCP_TIMESTAMP");
    if (spec.clientWindow !== undefined) {
      // snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup: the client's window as last seen, ours at 64 KiB.
      const wnd = spec.clientWindow;
      opt(SOL_TCP, TCP_REPAIR_WINDOW, Buffer.concat([u32(spec.recvSeq), u32(wnd), u32(wnd), u32(65535), u32(spec.recvSeq)]), "TCP_REPAIR_WINDOW");
    }
    // Repair off: the kernel sends a window probe, which acknowledges what we took in.
    opt(SOL_TCP, TCP_REPAIR, u32(0), "TCP_REPAIR off");
    return fd;
  } catch (err) {
    c.close(fd);
    throw err;
  }
}
