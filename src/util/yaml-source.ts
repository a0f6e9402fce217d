// YAML files with positions: parse once, validate against a zod schema, and report every
// problem as `file:line:col: message` (the form editors and CI logs understand).
import { readFileSync } from "node:fs";
import { LineCounter, parseDocument, isMap, isPair, isScalar, isSeq, type Document, type Node } from "yaml";
import type { z } from "zod";

export type PathKey = string | number;
export interface SourceError { file: string; line: number; col: number; message: string }

export function formatError(e: SourceError): string {
  return `${e.file}:${e.line}:${e.col}: ${e.message}`;
}

export class SourceErrors extends Error {
  constructor(readonly errors: SourceError[]) {
    super(errors.map(formatError).join("\n"));
    this.name = "SourceErrors";
  }
}

/** A parsed YAML file that can turn a data path into a line and column. */
export class YamlSource {
  readonly errors: SourceError[] = [];
  readonly data: unknown;
  private readonly doc: Document | undefined;
  private readonly lines = new LineCounter();

  constructor(readonly file: string, text?: string) {
    let source = text;
    if (source === undefined) {
      try {
        source = readFileSync(file, "utf8");
      } catch (err) {
        this.errors.push({ file, line: 1, col: 1, message: `cannot read file: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
        this.data = undefined;
        return;
      }
    }
    this.doc = parseDocument(source, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    for (const e of this.doc.errors) {
      // Without prettyErrors the parser gives offsets only: the line counter turns them into a position.
      const pos = e.linePos?.[0] ?? (e.pos?.[0] !== undefined ? this.lines.linePos(e.pos[0]) : { line: 1, col: 1 });
      this.errors.push({ file, line: pos.line, col: pos.col, message: `YAML: ${e.message.split("\n")[0]}` });
    }
    this.data = this.errors.length ? undefined : this.doc.toJS({ maxAliasCount: 100 });
  }

  /** Position of the value at `path` (or of its key when `key` is set); falls back to the nearest ancestor. */
  position(path: readonly PathKey[], key = false): { line: number; col: number } {
    if (!this.doc) return { line: 1, col: 1 };
    let node: unknown = this.doc.contents;
    let best: Node | undefined = node as Node;
    for (let i = 0; i < path.length; i++) {
      const k = path[i]!;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(k));
        if (!pair) break;
        const last = i === path.length - 1;
        if (last && key && isScalar(pair.key)) { best = pair.key; break; }
        node = pair.value;
        best = (pair.value as Node | null) ?? (pair.key as Node);
      } else if (isSeq(node) && typeof k === "number") {
        node = node.items[k];
        if (!node) break;
        best = node as Node;
      } else break;
    }
    const offset = best?.range?.[0] ?? 0;
    return this.lines.linePos(offset);
  }

  error(path: readonly PathKey[], message: string, key = false): void {
    const { line, col } = this.position(path, key);
    this.errors.push({ file: this.file, line, col, message });
  }

  /** Validates `data` with `schema`; each issue becomes a positioned error. */
  check<T>(schema: z.ZodType<T>, describe?: (issue: z.core.$ZodIssue, value: unknown) => string | undefined): T | undefined {
    if (this.data === undefined && this.errors.length) return undefined;
    const result = schema.safeParse(this.data);
    if (result.success) return result.data;
    for (const issue of result.error.issues) this.addIssue(issue, [], describe);
    return undefined;
  }

  private addIssue(issue: z.core.$ZodIssue, prefix: PathKey[], describe?: (issue: z.core.$ZodIssue, value: unknown) => string | undefined): void {
    const path = [...prefix, ...(issue.path as PathKey[])];
    const value = valueAt(this.data, path);
    const custom = describe?.({ ...issue, path } as z.core.$ZodIssue, value);
    if (custom) return this.error(path, custom);
    if (issue.code === "unrecognized_keys") {
      for (const k of issue.keys) this.error([...path, k], `unknown field "${k}"${where(path)}`, true);
      return;
    }
    if (issue.code === "invalid_union" && issue.errors.length) {
      // Report the branch that got furthest (fewest issues, deepest path): the one the author meant.
      const branches = issue.errors.filter((b) => b.length > 0);
      const best = branches.sort((a, b) => depth(b) - depth(a) || a.length - b.length)[0];
      if (best && depth(best) > 0) {
        for (const sub of best) this.addIssue(sub, path, describe);
        return;
      }
      return this.error(path, `invalid value ${preview(value)}${where(path)}`);
    }
    if (issue.code === "invalid_type" && value === undefined) {
      return this.error(path.slice(0, -1), `missing field "${String(path[path.length - 1])}"${where(path.slice(0, -1))}`);
    }
    this.error(path, `${issue.message}${where(path)}`);
  }
}

function depth(issues: z.core.$ZodIssue[]): number {
  return Math.max(...issues.map((i) => i.path.length));
}

function where(path: readonly PathKey[]): string {
  return path.length ? ` (at ${path.map((p) => (typeof p === "number" ? `[${p}]` : p)).join(".").replace(/\.\[/g, "[")})` : "";
}

export function preview(value: unknown): string {
  const s = JSON.stringify(value);
  return s === undefined ? String(value) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export function valueAt(data: unknown, path: readonly PathKey[]): unknown {
  let v: unknown = data;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PathKey, unknown>)[k];
  }
  return v;
}

/** Edit distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

export function suggest(word: string, candidates: Iterable<string>, max = 3): string[] {
  const scored = [...candidates]
    .map((c) => ({ c, d: c.includes(word) || word.includes(c) ? 1 : editDistance(word, c) }))
    .filter(({ c, d }) => d <= Math.max(2, Math.floor(c.length / 3)))
    .sort((x, y) => x.d - y.d);
  return scored.slice(0, max).map((s) => s.c);
}
