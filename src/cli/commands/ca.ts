import type { Command } from "commander";
import { writeFileSync } from "node:fs";
import { AUTHORITIES } from "../../pki/authorities.js";
import { Pki, defaultConfdir } from "../../pki/pki.js";
import { fail } from "../errors.js";

export function caCommand(program: Command): void {
  const ca = program.command("ca").description("the lab CA (to trust the lab world) and the state CA stand-ins");
  ca.command("export")
    .description("write a CA certificate to install in a browser or OS trust store")
    .option("--format <pem|der|cer|p12>", "PEM, DER (.cer; der and cer are the same) or PKCS#12 without key (.p12); docs/CA.md says where each goes", "pem")
    .option("--out <file>", "write here instead of stdout")
    .option("--ca <id>", "which CA (chokepoint ca list)", "lab")
    .option("--confdir <dir>", "configuration directory", defaultConfdir())
    .action((o: { format: string; out?: string; ca: string; confdir: string }) => {
      try {
        if (!["pem", "der", "cer", "p12"].includes(o.format)) throw new Error(`--format takes pem, der, cer or p12, got "${o.format}"`);
        if (o.format === "cer") o.format = "der";
        if (!o.out && o.format !== "pem" && process.stdout.isTTY) throw new Error(`${o.format} is binary: give --out FILE`);
        const bytes = new Pki(o.confdir).export(o.ca, o.format as "pem" | "der" | "p12");
        if (o.out) writeFileSync(o.out, bytes);
        else process.stdout.write(bytes);
      } catch (err) {
        fail(err);
      }
    });
  ca.command("path")
    .description("print where the CA certificate is (created on first use)")
    .option("--ca <id>", "which CA", "lab")
    .option("--confdir <dir>", "configuration directory", defaultConfdir())
    .action((o: { ca: string; confdir: string }) => {
      try {
        process.stdout.write(`${new Pki(o.confdir).authority(o.ca).certFile}\n`);
      } catch (err) {
        fail(err);
      }
    });
  ca.command("list")
    .description("the CAs the lab can sign with")
    .action(() => {
      for (const a of AUTHORITIES) {
        const validity = a.notBefore ? ` (${a.notBefore.slice(0, 10)} to ${a.notAfter?.slice(0, 10)})` : "";
        process.stdout.write(`${a.id.padEnd(18)} CN=${a.subject.CN}${validity}\n${" ".repeat(19)}${a.description}\n`);
      }
    });
}
