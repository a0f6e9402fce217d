// `chokepoint probe`: the reference probe (src/probe/run.ts) against a running lab: OONI's
// web connectivity for each target from each network, one OONI measurement a line.
import type { Command } from "commander";
import { createWriteStream, type WriteStream } from "node:fs";
import { runProbe } from "../../probe/run.js";
import { readTargets } from "./expect.js";
import { fail } from "../errors.js";
import { c } from "../style.js";

interface ProbeCliOptions { control: string; token?: string; th?: string; network: string[]; out?: string; targets?: string; tag: boolean; entry: string; resolver?: string }

const DEFAULT_CONTROL = process.env.CHOKEPOINT_CONTROL ?? "http://127.0.0.1:8470";

export function probeCommand(program: Command): void {
  program.command("probe")
    .description("the reference probe: OONI's web connectivity for each target, from each network of a running lab, written as OONI measurements (JSON Lines) for `chokepoint score`")
    .argument("[targets...]", "http(s) URLs or names (a name means https://NAME/)")
    .option("--control <url>", "the lab's control API: http://HOST:PORT, or unix:PATH (env CHOKEPOINT_CONTROL; chokepoint exec sets it)", DEFAULT_CONTROL)
    .option("--entry <explicit|transparent>", "explicit: through each network's DNS listener and SOCKS5 entry; transparent: the namespace's own way out (inside chokepoint exec, the default there)", process.env.CHOKEPOINT_RESOLVER ? "transparent" : "explicit")
    .option("--resolver <address[:port]>", "transparent: the resolver to ask (default: CHOKEPOINT_RESOLVER, which chokepoint exec sets, else /etc/resolv.conf's)")
    .option("--token <token>", "its token, when bound beyond loopback (env CHOKEPOINT_CONTROL_TOKEN)", process.env.CHOKEPOINT_CONTROL_TOKEN)
    .option("--th <url>", "another test helper (OONI's protocol; default: the lab's control vantage, CONTROL/v1/th)")
    .option("--network <id>", "a network to measure from (repeat for several; default: the lab's default network)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--targets <file>", "targets from a file: one a line, or an OONI test-lists CSV (its url column)")
    .option("--out <file>", "write the measurements here (JSON Lines; default: standard output)")
    .option("--no-tag", "do not tag the flows with measurement ids (score then pairs by target and time)")
    .action(async (args: string[], o: ProbeCliOptions) => {
      let out: WriteStream | undefined;
      try {
        const targets = [...args, ...(o.targets ? readTargets(o.targets) : [])];
        if (!targets.length) throw new Error("name targets (URLs or names) or --targets FILE");
        if (o.entry !== "explicit" && o.entry !== "transparent") throw new Error(`--entry takes explicit or transparent, got "${o.entry}"`);
        out = o.out ? createWriteStream(o.out, { flags: "w" }) : undefined;
        const sink = out ?? process.stdout;
        await runProbe(targets, {
          control: o.control, ...(o.token ? { token: o.token } : {}), ...(o.th ? { th: o.th } : {}), networks: o.network, tag: o.tag, entry: o.entry, ...(o.resolver ? { resolver: o.resolver } : {}),
          onMeasurement: (m, done, total) => {
            sink.write(`${JSON.stringify(m)}\n`);
            const b = m.test_keys.blocking;
            if (out) process.stderr.write(`${c.dim(`[${done}/${total}]`)} ${m.input} on ${m.probe_network_name}: blocking ${b === false ? c.green("false") : b === null ? c.dim("null (the control failed)") : c.red(String(b))}\n`);
          },
        });
        if (out) await new Promise<void>((resolve, reject) => out!.end((err?: Error | null) => (err ? reject(err) : resolve())));
      } catch (err) {
        out?.end();
        fail(err);
      }
    });
}
