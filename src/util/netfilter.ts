// Netfilter from Node without a compiler: koffi (prebuilt, from npm) over Debian's
// libnetfilter_queue (NFQUEUE: the kernel hands packets to us and waits for a verdict),
// libnetfilter_log (NFLOG: copies of packets that do not wait), libnftables (set elements added in-process, about 0.25 ms each, instead of a process per
// command) and libc (a raw socket for injected packets). Loaded only by the on-path box.
//
// Reading: each netlink socket is read with fs.read, which blocks a libuv pool
// thread, not the event loop; each read is one netlink message, handed to
// nfq_handle_packet, whose callback (ours) gives the verdict synchronously. A read that
// returns is followed by non-blocking recv()s in the same turn until the socket is empty:
// under load the pool-thread round trip is paid once per burst, not once per packet.
import { read } from "node:fs";
import { createRequire } from "node:module";

type Fn = (...a: unknown[]) => unknown;
interface Koffi {
  load(name: string): { func(sig: string): Fn };
  proto(sig: string): unknown;
  pointer(t: unknown): unknown;
  register(fn: Fn, t: unknown): unknown;
  unregister(cb: unknown): void;
  decode(p: unknown, t: unknown): unknown;
  array(t: string, n: number): unknown;
  view(p: unknown, len: number): ArrayBuffer;
}

let koffiLib: Koffi | undefined;
export function koffi(): Koffi {
  if (koffiLib) return koffiLib;
  const require = createRequire(import.meta.url);
  try {
    koffiLib = require("koffi") as Koffi;
  } catch (err) {
    throw new Error(`the on-path box needs the koffi package: ${(err as Error).message}`);
  }
  return koffiLib;
}

export function load(name: string, pkg: string): { func(sig: string): Fn } {
  try {
    return koffi().load(name);
  } catch (err) {
    throw new Error(`the on-path box needs ${name} (Debian: apt-get install ${pkg}): ${(err as Error).message}`);
  }
}

let libcSetsockopt: Fn | undefined;
/** setsockopt(2) with a buffer value; false when the kernel refused it. */
function setsockopt(fd: number, level: number, name: number, value: Buffer): boolean {
  libcSetsockopt ??= load("libc.so.6", "libc6").func("int setsockopt(int fd, int level, int name, const uint8_t *value, uint32_t len)");
  return libcSetsockopt(fd, level, name, value, value.length) === 0;
}

export const NF_DROP = 0;
export const NF_ACCEPT = 1;

/** A verdict for a queued packet: accept or drop, optionally with the packet's mark set. */
export type QueueVerdict = { verdict: typeof NF_ACCEPT | typeof NF_DROP; mark?: number };

export interface QueueStats {
  packets: number; accepted: number; dropped: number; readErrors: number;
  /** messages read without a pool-thread round trip */
  batched: number;
  /** batch verdicts sent (each answers every plain accept of a burst) */
  batches: number;
}

/**
 * A netfilter netlink socket read asynchronously: a blocking read on a libuv pool thread (the
 * event loop never blocks), then whatever else is waiting, without blocking, in the same turn.
 * Each message goes to the library's handler, which calls our callback synchronously.
 */
abstract class NetlinkReader {
  protected h: unknown;
  protected fd = -1;
  protected closed = false;
  private readonly buf = Buffer.alloc(1 << 17);
  private readonly recv = load("libc.so.6", "libc6").func("long recv(int fd, uint8_t *buf, size_t len, int flags)");
  readErrors = 0;
  /** Messages read without a pool-thread round trip. */
  batched = 0;

  protected abstract handleMessage(buf: Buffer, n: number): void;
  /** Called once a burst of messages is handled (batch verdicts). */
  protected afterBurst(): void {}

  /** A pool-thread read is pending (its thread is blocked in the kernel until data or the receive timeout). */
  private inFlight = false;
  private idle: (() => void) | undefined;

  /**
   * A blocked read is woken by the socket's receive timeout (set by the subclass), never by
   * closing the fd: a pool thread left blocked would keep the process from exiting (Node
   * joins its pool threads on exit).
   */
  protected setReceiveTimeout(ms: number): void {
    const tv = Buffer.alloc(16);
    tv.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
    tv.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
    setsockopt(this.fd, 1, 20, tv); // SOL_SOCKET, SO_RCVTIMEO
  }

  /** Resolves once no read is pending (at most one receive timeout after `closed` is set). */
  protected settled(): Promise<void> {
    if (!this.inFlight) return Promise.resolve();
    return new Promise((resolve) => { this.idle = resolve; });
  }

  protected readLoop(): void {
    if (this.closed) return;
    this.inFlight = true;
    read(this.fd, this.buf, 0, this.buf.length, null, (err, n) => {
      this.inFlight = false;
      if (this.closed) { this.idle?.(); return; }
      if (err) { if ((err as NodeJS.ErrnoException).code !== "EAGAIN") this.readErrors++; } // ENOBUFS: the kernel dropped messages while we were busy
      else if (n > 0) {
        this.handleMessage(this.buf, n);
        this.drain();
        this.afterBurst();
      }
      this.readLoop();
    });
  }

  /** Messages already waiting, read without blocking (MSG_DONTWAIT), up to a burst's worth. */
  drain(): void {
    for (let i = 0; i < 256 && !this.closed && this.fd >= 0; i++) {
      const n = this.recv(this.fd, this.buf, this.buf.length, 0x40 /* MSG_DONTWAIT */) as number;
      if (n <= 0) return; // EAGAIN (empty) or an error the next blocking read reports
      this.batched++;
      this.handleMessage(this.buf, n);
    }
  }
}

/** One NFQUEUE queue, read asynchronously; `onPacket` decides each packet synchronously. */
export class NfQueue extends NetlinkReader {
  private readonly counts = { packets: 0, accepted: 0, dropped: 0, batches: 0 };
  /** The counters, with the reader's (read errors, messages read without a pool-thread round trip). */
  get stats(): QueueStats {
    return { ...this.counts, readErrors: this.readErrors, batched: this.batched };
  }
  private qh: unknown;
  private cb: unknown;
  private readonly fns: Record<string, Fn>;

  constructor(private readonly num: number, private readonly onPacket: (bytes: Buffer) => QueueVerdict) {
    super();
    const lib = load("libnetfilter_queue.so.1", "libnetfilter-queue1");
    const k = koffi();
    const proto = k.proto("int chokepoint_nfq_cb(void *qh, void *nfmsg, void *nfad, void *data)");
    this.fns = {
      open: lib.func("void *nfq_open()"),
      close: lib.func("int nfq_close(void *h)"),
      bind: lib.func("int nfq_bind_pf(void *h, uint16_t pf)"),
      create: lib.func("void *nfq_create_queue(void *h, uint16_t num, chokepoint_nfq_cb *cb, void *data)"),
      destroy: lib.func("int nfq_destroy_queue(void *qh)"),
      mode: lib.func("int nfq_set_mode(void *qh, uint8_t mode, uint32_t range)"),
      maxlen: lib.func("int nfq_set_queue_maxlen(void *qh, uint32_t len)"),
      fd: lib.func("int nfq_fd(void *h)"),
      handle: lib.func("int nfq_handle_packet(void *h, uint8_t *buf, int len)"),
      hdr: lib.func("uint8_t *nfq_get_msg_packet_hdr(void *nfad)"),
      payload: lib.func("int nfq_get_payload(void *nfad, _Out_ uint8_t **data)"),
      verdict: lib.func("int nfq_set_verdict2(void *qh, uint32_t id, uint32_t verdict, uint32_t mark, uint32_t len, const uint8_t *buf)"),
      batch: lib.func("int nfq_set_verdict_batch2(void *qh, uint32_t id, uint32_t verdict, uint32_t mark)"),
    };
    this.cb = k.register((qh: unknown, _m: unknown, nfad: unknown) => this.handle(qh, nfad), k.pointer(proto));
  }

  /** Binds the queue (needs CAP_NET_ADMIN in the namespace) and starts reading. */
  open(): void {
    const f = this.fns;
    this.h = f.open!();
    if (!this.h) throw new Error("nfq_open failed (the on-path box needs root, CAP_NET_ADMIN)");
    f.bind!(this.h, 2);
    this.qh = f.create!(this.h, this.num, this.cb, null);
    if (!this.qh) throw new Error(`cannot bind NFQUEUE ${this.num} (another program holds it?)`);
    f.mode!(this.qh, 2 /* NFQNL_COPY_PACKET */, 0xffff);
    f.maxlen!(this.qh, 4096);
    this.fd = f.fd!(this.h) as number;
    this.setReceiveTimeout(200);
    this.readLoop();
  }

  protected handleMessage(buf: Buffer, n: number): void {
    this.fns.handle!(this.h, buf, n);
  }

  private handle(qh: unknown, nfad: unknown): number {
    const k = koffi();
    // Views over the kernel's message (no copy): the packet id (big-endian), then the packet.
    const id = new DataView(k.view(this.fns.hdr!(nfad), 4)).getUint32(0);
    const out: unknown[] = [null];
    const n = this.fns.payload!(nfad, out) as number;
    const bytes = n > 0 ? Buffer.from(k.view(out[0], n)) : Buffer.alloc(0);
    this.counts.packets++;
    let v: QueueVerdict;
    try {
      v = this.onPacket(bytes);
    } catch {
      v = { verdict: NF_ACCEPT }; // the box failing must not cut the network: fail open (counted by the caller)
    }
    if (v.verdict === NF_ACCEPT) this.counts.accepted++;
    else this.counts.dropped++;
    // Plain accepts wait for the burst's end and go out as one batch verdict (every pending
    // packet up to an id); drops and marked accepts are answered at once, one each.
    if (v.verdict === NF_ACCEPT && !v.mark) this.batchUpTo = id;
    else {
      this.afterBurst(); // the earlier accepts first: packets leave in the order they came
      this.fns.verdict!(qh, id, v.verdict, v.mark ?? 0, 0, null);
    }
    return 0;
  }

  /** The highest id of the plain accepts not answered yet (-1: none). */
  private batchUpTo = -1;

  protected override afterBurst(): void {
    if (this.batchUpTo < 0 || !this.qh) return;
    this.fns.batch!(this.qh, this.batchUpTo, NF_ACCEPT, 0);
    this.counts.batches++;
    this.batchUpTo = -1;
  }

  /** Stops reading, waits for the pending read to return (its receive timeout), then unbinds and closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.settled();
    if (this.qh) this.fns.destroy!(this.qh);
    if (this.h) this.fns.close!(this.h);
    koffi().unregister(this.cb);
  }
}

/**
 * One NFLOG group: copies of packets the kernel has already let go on (nothing waits for us).
 * The on-path box reads the handshake and teardown packets this way (they carry no payload to
 * judge), so a connection's SYN and SYN/ACK are not held up by the box.
 */
export class NfLog extends NetlinkReader {
  packets = 0;
  private gh: unknown;
  private cb: unknown;
  private readonly fns: Record<string, Fn>;

  constructor(private readonly group: number, private readonly onPacket: (bytes: Buffer) => void) {
    super();
    const lib = load("libnetfilter_log.so.1", "libnetfilter-log1");
    const k = koffi();
    const proto = k.proto("int chokepoint_nflog_cb(void *gh, void *nfmsg, void *nfad, void *data)");
    this.fns = {
      open: lib.func("void *nflog_open()"),
      close: lib.func("int nflog_close(void *h)"),
      bindPf: lib.func("int nflog_bind_pf(void *h, uint16_t pf)"),
      bindGroup: lib.func("void *nflog_bind_group(void *h, uint16_t num)"),
      unbindGroup: lib.func("int nflog_unbind_group(void *gh)"),
      mode: lib.func("int nflog_set_mode(void *gh, uint8_t mode, uint32_t range)"),
      qthresh: lib.func("int nflog_set_qthresh(void *gh, uint32_t qthresh)"),
      timeout: lib.func("int nflog_set_timeout(void *gh, uint32_t timeout)"),
      register: lib.func("int nflog_callback_register(void *gh, chokepoint_nflog_cb *cb, void *data)"),
      fd: lib.func("int nflog_fd(void *h)"),
      handle: lib.func("int nflog_handle_packet(void *h, uint8_t *buf, int len)"),
      payload: lib.func("int nflog_get_payload(void *nfad, _Out_ uint8_t **data)"),
      nonblock: (() => {
        const libc = load("libc.so.6", "libc6");
        const fcntl = libc.func("int fcntl(int fd, int cmd, int arg)");
        return (fd: unknown) => fcntl(fd, 4 /* F_SETFL */, 0o4000 /* O_NONBLOCK */);
      })(),
    };
    this.cb = k.register((_gh: unknown, _m: unknown, nfad: unknown) => {
      const out: unknown[] = [null];
      const n = this.fns.payload!(nfad, out) as number;
      if (n > 0) {
        this.packets++;
        try {
          this.onPacket(Buffer.from(k.view(out[0], n)));
        } catch { /* a copy: nothing waits on it (the caller counts its own failures) */ }
      }
      return 0;
    }, k.pointer(proto));
  }

  open(): void {
    const f = this.fns;
    this.h = f.open!();
    if (!this.h) throw new Error("nflog_open failed (the on-path box needs root, CAP_NET_ADMIN)");
    f.bindPf!(this.h, 2);
    this.gh = f.bindGroup!(this.h, this.group);
    if (!this.gh) throw new Error(`cannot bind NFLOG group ${this.group} (another program holds it?)`);
    f.mode!(this.gh, 2 /* NFULNL_COPY_PACKET */, 0xffff);
    // Every copy at once (the kernel's default batches 100 packets or a second).
    f.qthresh!(this.gh, 1);
    f.timeout!(this.gh, 0);
    f.register!(this.gh, this.cb, null);
    this.fd = f.fd!(this.h) as number;
    // Read on this thread only: a pool-thread read could take a copy (a SYN/ACK) that the box
    // then sees after the queued packet it came before. The queue drains the copies before
    // each packet it hands over; this timer keeps the socket from filling meanwhile.
    f.nonblock!(this.fd);
    this.poller = setInterval(() => this.drain(), 5);
    this.poller.unref();
  }

  private poller: NodeJS.Timeout | undefined;

  protected handleMessage(buf: Buffer, n: number): void {
    this.fns.handle!(this.h, buf, n);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.poller) clearInterval(this.poller);
    if (this.gh) this.fns.unbindGroup!(this.gh);
    if (this.h) this.fns.close!(this.h);
    koffi().unregister(this.cb);
  }
}

/**
 * nftables commands run in-process (libnftables), for set elements added per decision. A
 * command costs about 0.25 ms whatever its size, so additions are batched: one transaction
 * per turn of the event loop (or 256 elements).
 */
export class Nft {
  private readonly run: Fn;
  private readonly ctx: unknown;
  errors = 0;
  transactions = 0;
  private pending: string[] = [];

  constructor() {
    const lib = load("libnftables.so.1", "libnftables1");
    this.ctx = lib.func("void *nft_ctx_new(uint32_t flags)")(0);
    this.run = lib.func("int nft_run_cmd_from_buffer(void *ctx, const char *buf)");
  }

  /** Runs nft commands now; false (and counted) when nft refused them. */
  cmd(text: string): boolean {
    this.transactions++;
    const ok = this.run(this.ctx, text) === 0;
    if (!ok) this.errors++;
    return ok;
  }

  /** Queues a command for the next batch. */
  later(line: string): void {
    if (this.pending.push(line) === 1) setImmediate(() => this.flush());
    else if (this.pending.length >= 256) this.flush();
  }

  flush(): void {
    if (!this.pending.length) return;
    const text = `${this.pending.join("\n")}\n`;
    this.pending = [];
    this.cmd(text);
  }
}

/** A raw IPv4 socket (IP_HDRINCL) for packets the box injects (RSTs with the source it chooses). */
export class RawSocket {
  private readonly fd: number;
  private readonly sendto: Fn;
  sent = 0;

  /** `mark`: SO_MARK on every packet sent (the ruleset tells them from the ones it reads). */
  constructor(mark?: number) {
    const libc = load("libc.so.6", "libc6");
    this.fd = libc.func("int socket(int domain, int type, int protocol)")(2, 3, 255) as number; // AF_INET, SOCK_RAW, IPPROTO_RAW
    if (this.fd < 0) throw new Error("cannot open a raw socket (the on-path box needs root, CAP_NET_RAW; in a container: --cap-add NET_RAW)");
    if (mark !== undefined) {
      const v = Buffer.alloc(4);
      v.writeUInt32LE(mark);
      if (!setsockopt(this.fd, 1, 36, v)) throw new Error("cannot mark the raw socket's packets (SO_MARK needs CAP_NET_ADMIN)"); // SOL_SOCKET, SO_MARK
    }
    this.sendto = libc.func("long sendto(int fd, const uint8_t *buf, size_t len, int flags, const uint8_t *addr, uint32_t alen)");
    this.closeFd = libc.func("int close(int fd)");
  }

  private readonly closeFd: Fn;

  /** Sends a whole IPv4 packet (its destination from its header). */
  send(packet: Buffer): void {
    const sa = Buffer.alloc(16);
    sa.writeUInt16LE(2, 0); // AF_INET, host order
    packet.copy(sa, 4, 16, 20);
    if ((this.sendto(this.fd, packet, packet.length, 0, sa, 16) as number) > 0) this.sent++;
  }

  close(): void {
    this.closeFd(this.fd);
  }
}
