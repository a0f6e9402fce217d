// Running an external tool asynchronously (never execFileSync in a process hosting a lab:
// it would block the lab), with a time limit and optional stdin.
import { execFile } from "node:child_process";

export interface ToolRun { code: number | string; out: string; err: string }

/** Runs `cmd`; never rejects: `code` is 0, the exit code, or an error code such as "ENOENT". */
export function runTool(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<ToolRun> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 4 << 20 }, (e, out, err) => {
      const code = e ? ((e as NodeJS.ErrnoException).code ?? (e as { signal?: string }).signal ?? 1) : 0;
      resolve({ code: code as number | string, out: String(out), err: String(err) });
    });
    child.stdin?.on("error", () => undefined); // a tool that exits without reading
    child.stdin?.end(opts.input ?? "");
  });
}

/** Runs `cmd` and resolves with its stdout; rejects with its stderr when it fails. */
export async function sh(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await runTool(cmd, args, { ...(input !== undefined ? { input } : {}) });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.err.trim() || `exited ${r.code}`}`);
  return r.out;
}
