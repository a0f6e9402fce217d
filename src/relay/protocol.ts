// The relay's messaging protocol: JSON objects, one per line over TCP (one per WebSocket
// message, one per UDP datagram). Small and open on purpose: any language can speak it
// with a socket and a JSON parser. docs/relay.md describes it for client authors.
//
// client -> relay
//   {"type":"register","number":"+77011230001","network":"kcell-almaty-mobile"}
//   {"type":"send","id":"m1","to":"+77011230002","text":"hi","via":"whatsapp"}
//   {"type":"ping"}
// relay -> client
//   {"type":"registered","number":...,"network":...}
//   {"type":"ack","id":"m1","status":"accepted"|"queued"}
//   {"type":"message","id":"r17","from":...,"to":...,"via":...,"text":...,"sentAt":"<lab ISO>"}
//   {"type":"receipt","id":"m1","to":...,"status":"delivered","at":"<lab ISO>"}
//   {"type":"error","id"?:"m1","code":"...","message":"..."}
//   {"type":"pong"}

export const SERVICES = ["whatsapp", "viber", "sms"] as const;
export type Service = (typeof SERVICES)[number];

/** Longest frame (one line) the relay reads; a longer one ends the connection. */
export const MAX_FRAME = 16 * 1024;
/** Longest message text, in UTF-8 bytes (an SMS is 160 characters; messengers allow more). */
export const MAX_TEXT = 4096;

export type ClientFrame =
  | { type: "register"; number: string; network?: string }
  /** `via` absent: the service of the endpoint the client reached (whatsapp on the relay's own port). */
  | { type: "send"; id: string; to: string; text: string; via?: Service }
  | { type: "ping" };

export type ErrorCode =
  | "bad-frame" | "not-registered" | "unknown-number" | "unknown-network" | "too-large"
  | "queue-full" | "rejected" | "unavailable" | "flood";

export type RelayFrame =
  | { type: "registered"; number: string; network: string }
  | { type: "ack"; id: string; status: "accepted" | "queued" }
  | { type: "message"; id: string; from: string; to: string; via: Service; text: string; sentAt: string }
  | { type: "receipt"; id: string; to: string; status: "delivered"; at: string }
  | { type: "error"; id?: string; code: ErrorCode; message: string }
  | { type: "pong" };

const NUMBER = /^\+?[0-9]{3,15}$/;
const ID = /^[\x21-\x7e]{1,64}$/;

export function isNumber(n: unknown): n is string {
  return typeof n === "string" && NUMBER.test(n);
}

/** Parses one frame; a string is the reason it is not one (the relay answers `bad-frame`). */
export function parseFrame(text: string): ClientFrame | { error: string; code?: ErrorCode; id?: string } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { error: "not JSON" };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { error: "a frame is a JSON object" };
  const f = v as Record<string, unknown>;
  switch (f.type) {
    case "ping":
      return { type: "ping" };
    case "register":
      if (!isNumber(f.number)) return { error: "register: number must be digits with an optional +, 3 to 15 of them" };
      if (f.network !== undefined && (typeof f.network !== "string" || !f.network)) return { error: "register: network must be a non-empty string" };
      return f.network === undefined ? { type: "register", number: f.number } : { type: "register", number: f.number, network: f.network as string };
    case "send": {
      const id = typeof f.id === "string" && ID.test(f.id) ? f.id : undefined;
      if (!id) return { error: "send: id must be 1-64 printable ASCII characters" };
      if (!isNumber(f.to)) return { error: "send: to must be a number", code: "unknown-number", id };
      if (typeof f.text !== "string") return { error: "send: text must be a string", id };
      if (Buffer.byteLength(f.text) > MAX_TEXT) return { error: `send: text longer than ${MAX_TEXT} bytes`, code: "too-large", id };
      if (f.via !== undefined && !SERVICES.includes(f.via as Service)) return { error: `send: via must be one of ${SERVICES.join(", ")}`, id };
      return { type: "send", id, to: f.to, text: f.text, ...(f.via !== undefined ? { via: f.via as Service } : {}) };
    }
    default:
      return { error: `unknown frame type ${JSON.stringify(f.type ?? null)} (register, send, ping)` };
  }
}
