import { execFile, spawn } from "node:child_process";

export interface Run { code: number | null; stdout: string; stderr: string }

/** Runs a real client (curl, openssl, dig) with a time limit; never throws. */
export function run(cmd: string, args: string[], opts: { input?: string | Buffer; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, {
      timeout: opts.timeoutMs ?? 20_000, encoding: "buffer", maxBuffer: 64 << 20,
      ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}), ...(opts.cwd ? { cwd: opts.cwd } : {}),
    }, (err, stdout, stderr) => {
      const code = err ? ((err as NodeJS.ErrnoException & { code?: unknown }).code === "ENOENT" ? 127 : (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : child.exitCode)) : 0;
      resolve({ code, stdout: stdout.toString("latin1"), stderr: stderr.toString("latin1") });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

/** openssl s_client with some input, closing stdin after it. */
export function sClient(args: string[], input = "Q\n", timeoutMs = 10_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn("openssl", ["s_client", ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString("latin1")));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString("latin1")));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    child.stdin.end(input);
  });
}
