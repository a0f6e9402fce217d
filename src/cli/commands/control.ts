// CLI verbs on a running lab's control API: `chokepoint status`, `chokepoint clock ...`.
import type { Command } from "commander";
import { c } from "../style.js";
import { fail } from "../errors.js";
import { controlRequest, type ControlReply } from "../../util/control-client.js";

interface Conn { control: string; token?: string; json?: boolean }

const DEFAULT = process.env.CHOKEPOINT_CONTROL ?? "http://127.0.0.1:8470";

async function call(o: Conn, method: "GET" | "POST", path: string, body?: unknown): Promise<Record<string, unknown>> {
  let r: ControlReply;
  try {
    r = await controlRequest(o.control, path, { method, ...(body !== undefined ? { body } : {}), ...(o.token ? { token: o.token } : {}) });
  } catch (err) {
    throw new Error(`no lab answers at ${o.control} (${(err as Error).message}); is \`chokepoint up\` running? (--control URL)`);
  }
  let v: Record<string, unknown> = {};
  try { v = JSON.parse(r.text) as Record<string, unknown>; } catch { /* not JSON */ }
  if (r.status < 200 || r.status >= 300) throw new Error(`${r.status}: ${String(v.error ?? r.text.slice(0, 200))}`);
  return v;
}

const connOptions = (cmd: Command): Command => cmd
  .option("--control <url>", "the lab's control API: http://HOST:PORT or unix:PATH (env CHOKEPOINT_CONTROL)", DEFAULT)
  .option("--token <token>", "its token, when bound beyond loopback (env CHOKEPOINT_CONTROL_TOKEN)", process.env.CHOKEPOINT_CONTROL_TOKEN)
  .option("--json", "print the API's JSON answer");

export function controlCommands(program: Command): void {
  connOptions(program.command("status").description("what a running lab is doing: profiles, lab time, counters"))
    .action(async (o: Conn) => {
      try {
        const s = await call(o, "GET", "v1/status");
        if (o.json) return void process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        const clock = s.clock as { mode: string; speed: number; paused: boolean };
        const lines = [
          `${c.bold("lab time")} ${String(s.labTime)}  (${clock.mode}${clock.paused ? ", paused" : `, x${clock.speed}`})`,
          ...(s.profiles as { id: string; title: string; variant?: string }[]).map((p) => `  ${p.id}${p.variant ? ` (${p.variant})` : ""}: ${p.title}`),
          `${c.bold("decisions")} ${String(s.total)}`,
        ];
        for (const [action, byNet] of Object.entries(s.counters as Record<string, Record<string, number>>)) {
          lines.push(`  ${action.padEnd(12)} ${Object.entries(byNet).map(([n, k]) => `${n} ${k}`).join(", ")}`);
        }
        process.stdout.write(`${lines.join("\n")}\n`);
      } catch (err) {
        fail(err);
      }
    });

  const clock = program.command("clock").description("steer a running lab's clock: pause, resume, seek INSTANT, speed N");
  const verb = (name: string, desc: string, body: (arg?: string) => unknown, arg?: string): void => {
    const cmd = clock.command(arg ? `${name} <${arg}>` : name).description(desc);
    connOptions(cmd).action(async (...args: unknown[]) => {
      const value = arg ? (args[0] as string) : undefined;
      const o = (arg ? args[1] : args[0]) as Conn;
      try {
        const r = await call(o, "POST", "v1/clock", body(value));
        if (o.json) return void process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        process.stdout.write(`lab time ${String(r.labTime)} (${r.paused ? "paused" : `running, x${String(r.speed)}`})\n`);
      } catch (err) {
        fail(err);
      }
    });
  };
  verb("pause", "stop lab time", () => ({ pause: true }));
  verb("resume", "let lab time run again", () => ({ pause: false }));
  verb("seek", "jump to an instant (clears the residual table), e.g. 2014-02-13T17:30:00+06:00", (t) => ({ seek: t }), "instant");
  verb("speed", "lab seconds per real second", (n) => {
    const v = Number(n);
    if (!(v > 0)) throw new Error(`speed takes a positive number, got "${n}"`);
    return { speed: v };
  }, "n");
}
