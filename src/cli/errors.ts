// How the CLI reports failures: positioned errors one a line, others as one clear sentence.
import { relative } from "node:path";
import { SourceErrors, formatError, type SourceError } from "../util/yaml-source.js";

export function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith("..") ? rel : file;
}

export function printSourceErrors(errors: SourceError[]): void {
  for (const e of errors) process.stderr.write(`${formatError({ ...e, file: displayPath(e.file) })}\n`);
}

export function fail(err: unknown): never {
  if (err instanceof SourceErrors) printSourceErrors(err.errors);
  else process.stderr.write(`chokepoint: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
