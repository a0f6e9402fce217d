// Flow adoption: how a component hands a client connection the censor let through to the
// part of the lab that serves it (the world's origin, the messaging relay), so that the
// component leaves the data path. Components know these interfaces, never each other.
import type { Socket } from "node:net";
import type { Verdict } from "../policy/types.js";

export interface FlowEnds {
  /** The client, as the censor saw it. */
  client: { ip: string; port: number };
  /** Where the client was going (the name it asked for, when it named one). */
  dst: { ip: string; port: number; host?: string };
  network: string;
}

/** Takes over a judged, allowed connection with the bytes already read from it. */
export interface FlowSink {
  adopt(socket: Socket, ends: FlowEnds, first: Buffer): boolean;
}

/** A messaging service's chat flow (network from the path, service from the endpoint). */
export interface ChatSink {
  adoptChat(socket: Socket, network: string, service: string, first: Buffer): void;
}

/**
 * Carries out a verdict on a connection a packet-level part (the on-path box) judged and took
 * over: the stream's side of the action (a block page, an alert, MITM, throttling), not judged again.
 */
export interface FlowCarrier {
  carry(socket: Socket, dst: { ip: string; port: number }, network: string, verdict: Verdict, first: Buffer): void;
}
