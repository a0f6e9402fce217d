// `chokepoint exec -- CMD`: runs an unmodified command on a censored network (transparent
// mode: a network namespace whose only way out is the censor), then removes it all.
import { spawn } from "node:child_process";
import type { Command } from "commander";
import { startSession, type SessionOptions } from "../../transparent/session.js";
import { down } from "../../transparent/topology.js";
import { fail } from "../errors.js";
import { c } from "../style.js";

interface ExecOptions extends Omit<SessionOptions, "profiles"> { profile: string[] }

export function execCommand(program: Command): void {
  program
    .command("exec")
    .description("Linux, root: run a command on a censored network, with no proxy settings (transparent mode), and forward its exit code")
    .argument("<command...>", "the command and its arguments (after --)")
    .option("-p, --profile <id|file>", "profile to activate (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--country <cc>", "every profile of this country in force at --at/--from")
    .option("--variant <name>", "variant of the profiles that offer it")
    .option("--network <id>", "the network the command is on (default: the first profile's first network)")
    .option("--at <instant>", "pin lab time")
    .option("--from <instant>", "replay from this instant")
    .option("--speed <n>", "lab seconds per real second (with --from)")
    .option("--confdir <dir>", "configuration directory (lab CA)")
    .option("--events <file>", "append every decision to this JSON Lines file")
    .option("--datapath <proxy|onpath>", "proxy: TCP terminated by the interceptor; onpath: packets forwarded through router hops and the box (the profile's dpi.box); default: onpath for a profile with a box model, else proxy")
    .action(async (command: string[], o: ExecOptions) => {
      if (o.datapath !== undefined && o.datapath !== "proxy" && o.datapath !== "onpath") return fail(new Error(`--datapath takes proxy or onpath, got "${o.datapath}"`));
      let session: Awaited<ReturnType<typeof startSession>> | undefined;
      try {
        const { profile, ...rest } = o;
        session = await startSession({ profiles: profile, ...rest });
        const network = o.network ?? session.network;
        const ns = session.namespaceOf(network);
        // What a command (the reference probe, say) needs to find the lab from inside: its control API, network and resolver.
        const env = { ...process.env, CHOKEPOINT_CONTROL: `unix:${session.controlSocket}`, CHOKEPOINT_NETWORK: network, CHOKEPOINT_RESOLVER: session.resolverOf(network) };
        const child = spawn("ip", ["netns", "exec", ns, ...command], { stdio: "inherit", env });
        const forward = (sig: NodeJS.Signals): void => { child.kill(sig); };
        process.on("SIGINT", forward);
        process.on("SIGTERM", forward);
        const code = await new Promise<number>((resolve) => {
          child.once("error", (err) => { process.stderr.write(`chokepoint: ${err.message}\n`); resolve(127); });
          child.once("exit", (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)));
        });
        await session.stop();
        process.exit(code);
      } catch (err) {
        await session?.stop().catch(() => undefined);
        fail(err);
      }
    });
}

export function downCommand(program: Command): void {
  program
    .command("down")
    .description("remove what a crashed transparent-mode run left: the chokepoint-* namespaces (with their links and nft tables) and their processes")
    .action(async () => {
      try {
        if (process.getuid?.() !== 0) throw new Error("down needs root (it deletes network namespaces): run it with sudo");
        const removed = await down();
        process.stdout.write(removed.length ? `removed ${removed.join(", ")}\n` : c.dim("nothing to remove\n"));
      } catch (err) {
        fail(err);
      }
    });
}
