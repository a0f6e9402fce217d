// List files for name and address matchers: OONI/Citizen Lab test-lists CSV, RPZ zone files,
// or plain one-entry-a-line text ('#' comments). Entries come back in the name notation of
// the model ("a.b" exact, ".a.b" with subdomains, "*.a.b" subdomains only) or as IPs/CIDRs.
import { openSync, readSync, closeSync, fstatSync } from "node:fs";
import { isIP } from "node:net";
import { extname } from "node:path";
import type { SourceError } from "../util/yaml-source.js";

export type ListFormat = "plain" | "csv" | "rpz";
export type ListKind = "name" | "ip";
/**
 * What an RPZ record asks for (RFC-draft "DNS Response Policy Zones" as BIND implements it):
 * CNAME . NXDOMAIN; CNAME *. NODATA; CNAME rpz-passthru. let it be; CNAME rpz-drop. no
 * answer; CNAME rpz-tcp-only. TC over UDP; A/AAAA records: answer with those (local data).
 */
export type RpzPolicy = { kind: "nxdomain" | "nodata" | "passthru" | "drop" | "tcp-only" } | { kind: "local"; addresses: string[] };
export interface ListResult { entries: string[]; errors: SourceError[]; lines: number; /** RPZ files: each entry's policy. */ policies?: Map<string, RpzPolicy> }
export type Progress = (done: number, total: number) => void;

const MAX_ERRORS = 10;
const LABEL_RE = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

export function formatFor(file: string, format?: ListFormat): ListFormat {
  if (format) return format;
  const ext = extname(file).toLowerCase();
  if (ext === ".csv") return "csv";
  if (ext === ".rpz" || ext === ".zone") return "rpz";
  return "plain";
}

/** Lower-cases and checks a name; returns undefined when it is not a plausible DNS name. */
export function normalizeName(raw: string): string | undefined {
  let name = raw.trim().toLowerCase();
  if (name.endsWith(".")) name = name.slice(0, -1);
  if (!name || name.length > 253) return undefined;
  for (const label of name.split(".")) if (!LABEL_RE.test(label)) return undefined;
  return name;
}

/** Normalizes an entry in name notation (exact / ".suffix" / "*.wildcard"). */
export function normalizeNameEntry(raw: string, mode: "exact" | "suffix" = "exact"): string | undefined {
  const t = raw.trim();
  if (t.startsWith("*.")) {
    const n = normalizeName(t.slice(2));
    return n && `*.${n}`;
  }
  if (t.startsWith(".")) {
    const n = normalizeName(t.slice(1));
    return n && `.${n}`;
  }
  const n = normalizeName(t);
  return n && (mode === "suffix" ? `.${n}` : n);
}

export function isCidr(raw: string): boolean {
  const [addr, len, extra] = raw.trim().split("/");
  if (extra !== undefined || !addr) return false;
  const family = isIP(addr);
  if (!family) return false;
  if (len === undefined) return true;
  if (!/^\d{1,3}$/.test(len)) return false;
  return Number(len) <= (family === 4 ? 32 : 128);
}

/** Streams a list file in 4 MiB chunks (a 1M-name list is ~20 MB), reporting progress. */
export function loadList(
  file: string,
  opts: { kind: ListKind; format?: ListFormat; mode?: "exact" | "suffix"; onProgress?: Progress },
): ListResult {
  const format = formatFor(file, opts.format);
  const entries: string[] = [];
  const errors: SourceError[] = [];
  const policies = format === "rpz" ? new Map<string, RpzPolicy>() : undefined;
  const fd = openSync(file, "r");
  let lineNo = 0;
  let refused = false;
  try {
    const total = fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(4 << 20);
    let done = 0;
    let carry = "";
    let origin = "";
    const onLine = (line: string): void => {
      lineNo++;
      if (refused) return;
      // A key, a certificate or binary data is not a list: say so without showing any of it
      // (a profile can name any file; its errors must not carry another file's contents out).
      if (/^-----BEGIN |\u0000/.test(line)) {
        refused = true;
        entries.length = 0;
        errors.length = 0;
        errors.push({ file, line: lineNo, col: 1, message: "this file does not look like a list of names or addresses (a PEM block or binary data); none of it is shown" });
        return;
      }
      let policy: RpzPolicy | string | undefined;
      const parsed = format === "csv" ? csvLine(line, lineNo)
        : format === "rpz" ? rpzLine(line, origin, (o) => (origin = o), (p) => (policy = p))
        : plainLine(line);
      if (parsed === null) return;
      if (format === "csv" && lineNo === 1) {
        // Not OONI's header (csvLine skips it): the first line would be taken for a name. Say so rather than guess.
        refused = true;
        errors.push({ file, line: 1, col: 1, message: "a test-lists CSV starts with OONI's header (url,category_code,...); give `format: plain` for one name a line" });
        return;
      }
      if (typeof policy === "string") {
        if (errors.length < MAX_ERRORS) errors.push({ file, line: lineNo, col: 1, message: policy });
        return;
      }
      const entry = opts.kind === "ip"
        ? (isCidr(parsed) ? parsed.trim() : undefined)
        : normalizeNameEntry(parsed, opts.mode);
      if (entry && policies && policy) {
        const had = policies.get(entry);
        if (had?.kind === "local" && policy.kind === "local") had.addresses.push(...policy.addresses);
        else {
          if (!had) entries.push(entry);
          policies.set(entry, policy);
        }
      } else if (entry) entries.push(entry);
      else if (errors.length < MAX_ERRORS) {
        errors.push({ file, line: lineNo, col: 1, message: `not ${opts.kind === "ip" ? "an address or CIDR" : "a domain name"}: ${showable(parsed)}` });
      }
    };
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      done += n;
      const text = carry + buf.toString("utf8", 0, n);
      const parts = text.split("\n");
      carry = parts.pop() ?? "";
      for (const line of parts) onLine(line);
      opts.onProgress?.(done, total);
    }
    if (carry) onLine(carry);
  } finally {
    closeSync(fd);
  }
  if (!refused && !errors.length && !entries.length) errors.push({ file, line: 1, col: 1, message: "the list has no entries (an empty list blocks nothing: is it the right file?)" });
  return { entries, errors, lines: lineNo, ...(policies ? { policies } : {}) };
}

/** An entry as an error may quote it: a short printable line that could be a mistyped name, else only its length (never a key-like blob). */
function showable(entry: string): string {
  const quotable = /^[\x20-\x7e]{1,80}$/.test(entry) && !/^[A-Za-z0-9+/=]{40,}$/.test(entry);
  return quotable ? JSON.stringify(entry) : `(${entry.length} characters that are no name or address)`;
}

/** The policy of an RPZ record from the fields after its owner ([ttl] [class] type rdata). */
function rpzPolicy(fields: string[]): RpzPolicy | string {
  const f = fields.filter((x) => !/^\d+$/.test(x) && x.toUpperCase() !== "IN");
  const type = f[0]?.toUpperCase();
  const data = f[1] ?? "";
  if (type === "A" || type === "AAAA") return isIP(data) ? { kind: "local", addresses: [data] } : `local data ${type} ${data} is not an address`;
  if (type !== "CNAME") return `RPZ record type ${type ?? "(none)"} is not supported (CNAME policies, A and AAAA local data)`;
  switch (data.toLowerCase()) {
    case ".": return { kind: "nxdomain" };
    case "*.": return { kind: "nodata" };
    case "rpz-passthru.": return { kind: "passthru" };
    case "rpz-drop.": return { kind: "drop" };
    case "rpz-tcp-only.": return { kind: "tcp-only" };
    default: return `CNAME ${data} (local data that names another name) is not supported: use A or AAAA records`;
  }
}

function plainLine(line: string): string | null {
  const t = line.replace(/#.*$/, "").trim();
  return t ? t : null;
}

/**
 * A test-lists CSV row's first column (url,category_code,...): a URL or a bare name; null for
 * a blank line, a comment or the header. (Later columns may hold quoted commas; the first not.)
 */
export function testListsCell(line: string, lineNo: number): string | null {
  const t = line.trim();
  if (!t || t.startsWith("#")) return null;
  const first = (t.split(",")[0] ?? "").replace(/^"|"$/g, "");
  return lineNo === 1 && first.toLowerCase() === "url" ? null : first || null;
}

/** test-lists CSV: the first column's host (a URL's, or the bare name). */
function csvLine(line: string, lineNo: number): string | null {
  const first = testListsCell(line, lineNo);
  if (first === null) return null;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(first)) {
    try {
      return new URL(first).hostname.replace(/^\[|\]$/g, "");
    } catch {
      return first;
    }
  }
  return first;
}

/** RPZ: owner names of records ("bad.example CNAME ."), relative to $ORIGIN ("rpz" zones), and what each asks for. */
function rpzLine(line: string, origin: string, setOrigin: (o: string) => void, setPolicy: (p: RpzPolicy | string) => void): string | null {
  const t = line.replace(/;.*$/, "").trim();
  if (!t) return null;
  if (t.startsWith("$ORIGIN")) {
    setOrigin(t.split(/\s+/)[1]?.replace(/\.$/, "") ?? "");
    return null;
  }
  if (t.startsWith("$") || /^\s/.test(line) || t.startsWith("@")) return null;
  const owner = t.split(/\s+/)[0]!;
  const fields = t.split(/\s+/).map((f) => f.toUpperCase());
  if (fields.includes("SOA") || fields.includes("NS")) return null;
  setPolicy(rpzPolicy(t.split(/\s+/).slice(1)));
  let name = owner.endsWith(".") ? owner.slice(0, -1) : owner;
  // Owner names are relative to the zone's origin unless fully qualified; strip the RPZ zone name.
  if (!owner.endsWith(".") && origin && name.endsWith(`.${origin}`)) name = name.slice(0, -origin.length - 1);
  else if (owner.endsWith(".") && origin && name.endsWith(`.${origin}`)) name = name.slice(0, -origin.length - 1);
  return name;
}
