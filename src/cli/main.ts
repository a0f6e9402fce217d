#!/usr/bin/env node
// chokepoint's command line.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { PACKAGE_ROOT } from "../paths.js";
import { listCommand } from "./commands/list.js";
import { showCommand } from "./commands/show.js";
import { validateCommand } from "./commands/validate.js";
import { upCommand } from "./commands/up.js";
import { caCommand } from "./commands/ca.js";
import { msgCommand } from "./commands/msg.js";
import { conformanceCommand } from "./commands/conformance.js";
import { expectCommand } from "./commands/expect.js";
import { scoreCommand } from "./commands/score.js";
import { probeCommand } from "./commands/probe.js";
import { timelineCommand } from "./commands/timeline.js";
import { downCommand, execCommand } from "./commands/exec.js";
import { controlCommands } from "./commands/control.js";

// A reader that goes away (`chokepoint list | head`) ends the command quietly, as in any Unix tool.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
}

const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string };

const program = new Command()
  .name("chokepoint")
  .description("replay documented censorship regimes: a censoring resolver, interceptor and messaging relay")
  .version(pkg.version)
  .showSuggestionAfterError(true);

listCommand(program);
showCommand(program);
validateCommand(program);
upCommand(program);
caCommand(program);
msgCommand(program);
conformanceCommand(program);
expectCommand(program);
scoreCommand(program);
probeCommand(program);
timelineCommand(program);
execCommand(program);
downCommand(program);
controlCommands(program);

await program.parseAsync(process.argv);
