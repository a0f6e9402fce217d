// URL matchers ("host/path") as the model keeps them.
import { normalizeName } from "./lists.js";

/** "host/path", "http://host/path" or "host" -> { host, path } with a leading "/". */
export function parseUrlMatch(text: string): { host: string; path: string } | undefined {
  const stripped = text.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  const slash = stripped.indexOf("/");
  const hostPart = slash < 0 ? stripped : stripped.slice(0, slash);
  const host = normalizeName(hostPart.replace(/:\d+$/, ""));
  if (!host) return undefined;
  return { host, path: slash < 0 ? "/" : stripped.slice(slash) };
}
