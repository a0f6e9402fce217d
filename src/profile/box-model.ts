// A box model (profile `dpi.box`): how an on-path censor device of a regime behaves on the wire, as data (a
// profile's `dpi.box`). Each switch is one of the behaviours the record measured
// (../shared/research/onpath.md, section A): Geneva's results against the 2019 Kazakh box
// (Bock et al., CCS 2019, Table 1), the 2021 residual censorship (WOOT 2021), the 2020-22
// HTTP box (SIGCOMM 2020, USENIX Security 2022).

export interface BoxModel {
  /** syn: flow state is built from the SYN the box sees (a SYN/ACK first reverses roles: "TCB turnaround"); any: from the first packet. */
  flowFrom: "syn" | "any";
  /** A SYN's payload counts as the flow's first data (a second SYN with payload desynchronizes the box). */
  synPayload: boolean;
  /** validate: a segment with a bad TCP checksum is not read; ignore: it is read as data (an insertion packet). */
  checksum: "validate" | "ignore";
  /** validate: a segment whose sequence number is not the next expected one is not read; ignore: it is. */
  sequence: "validate" | "ignore";
  /** honour: a packet whose TTL cannot reach the server (hops after the box) is not read; ignore: the box reads it. */
  ttl: "honour" | "ignore";
  /** first-packet: the first data segment alone is judged; reassemble: in-order bytes up to `bufferLimit`. */
  inspect: "first-packet" | "reassemble";
  /** Bytes a reassembling box holds before it judges what it has (KZ HTTP 2020-22: 1,434). */
  bufferLimit: number;
  /** rst-fin: a RST or FIN (either side) ends the box's state for the flow; ignore: they do not. */
  teardown: "rst-fin" | "ignore";
  /** Whose payload triggers: the client's, or either side's. */
  direction: "client" | "both";
  /** Ports the box inspects (undefined: any port). */
  ports?: number[];
  /** Packets of a flow the box looks at before it lets the flow be (fail open: the rest go by in the kernel). */
  queuePackets: number;
  /** Routers between the clients and the box, and between the box and the servers (KZ 2019: the box 3-4 hops before the server). */
  hops: { client: number; server: number };
  /**
   * The packets the box injects (RSTs): their IP TTL and IP ID. "copy": those of the end it
   * impersonates, as the box last saw them (its RSTs look like that end's packets);
   * a number: that initial TTL (it gives the box's position away); "zero" / "random" IP IDs.
   * The record does not report KZ's values (onpath.md): "copy" is the default.
   */
  injected: { ttl: "copy" | number; ipId: "copy" | "zero" | "random" };
  /** Where each switch comes from: sources and confidence, in words. */
  sources?: string;
}

/** What most documented boxes did (the 2019 Qaznet box, CCS 2019): stateful from the SYN, no checksum or sequence checks, first packet only, RSTs ignored. */
export const DEFAULT_BOX: BoxModel = {
  flowFrom: "syn", synPayload: true, checksum: "ignore", sequence: "ignore", ttl: "ignore",
  inspect: "first-packet", bufferLimit: 16384, teardown: "ignore", direction: "client", queuePackets: 10,
  hops: { client: 1, server: 3 }, injected: { ttl: "copy", ipId: "copy" },
};
