// A block page as the censor sends it: one HTTP/1.1 response, then the connection closes.
import type { Action } from "../profile/model.js";

export function blockPage(a: Extract<Action, { type: "blockpage" }>): string {
  const body = a.body;
  const headers = { "Content-Type": "text/html; charset=utf-8", ...a.headers, "Content-Length": String(Buffer.byteLength(body)), Connection: "close" };
  return `HTTP/1.1 ${a.status} ${a.reason ?? ""}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n${body}`;
}
