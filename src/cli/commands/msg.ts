import type { Command } from "commander";
import { DEFAULT_PORTS } from "../../runtime/listen.js";
import { RelayClient } from "../../relay/client.js";
import { SERVICES, type RelayFrame, type Service } from "../../relay/protocol.js";
import { fail } from "../errors.js";

interface Common { relay: string; network?: string; socks?: string; endpoint?: string; json?: boolean }

function hostPort(text: string, what: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) > 65535) throw new Error(`${what} must be HOST:PORT, got "${text}"`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** Directly to the relay, or through the lab's SOCKS5 proxy to a messaging endpoint of the world. */
async function open(o: Common): Promise<RelayClient> {
  if (o.socks) {
    const proxy = hostPort(o.socks, "--socks");
    const to = hostPort(o.endpoint ?? "c.whatsapp.net:5222", "--endpoint");
    return RelayClient.connect({ ...to, socks: { ...proxy, ...(o.network ? { username: o.network } : {}) } });
  }
  return RelayClient.connect(hostPort(o.relay, "--relay"));
}

function common(cmd: Command): Command {
  return cmd
    .option("--network <id>", "the subscriber's network (default: the lab's default network)")
    .option("--relay <host:port>", "the relay (explicit mode)", `127.0.0.1:${DEFAULT_PORTS.relay}`)
    .option("--socks <host:port>", "reach the service through the lab's SOCKS5 proxy instead (the censor sees the connection)")
    .option("--endpoint <host:port>", "with --socks: the service endpoint to connect to", "c.whatsapp.net:5222")
    .option("--json", "print the relay's frames as JSON lines");
}

function via(v: string | undefined): Service | undefined {
  if (v === undefined) return undefined;
  if (!SERVICES.includes(v as Service)) throw new Error(`--via takes ${SERVICES.join(", ")}, got "${v}"`);
  return v as Service;
}

export function msgCommand(program: Command): void {
  const msg = program.command("msg").description("a reference messaging client: subscribers on a network, through the lab's relay");

  common(msg.command("listen")
    .description("register a number and print the messages it receives (until Ctrl-C)")
    .requiredOption("--as <number>", "the subscriber's number, e.g. +77011230001"))
    .action(async (o: Common & { as: string }) => {
      try {
        const c = await open(o);
        const reg = await c.register(o.as, o.network);
        if (!o.json) process.stderr.write(`listening as ${reg.number} on ${reg.network} (Ctrl-C to stop)\n`);
        c.on("frame", (f: RelayFrame) => {
          if (o.json) process.stdout.write(`${JSON.stringify(f)}\n`);
          else if (f.type === "message") process.stdout.write(`${f.sentAt} ${f.via} ${f.from}: ${f.text}\n`);
        });
        c.on("close", () => {
          process.stderr.write("the relay closed the connection\n");
          process.exit(1);
        });
        const stop = (): void => { c.close(); process.exit(0); };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      } catch (err) {
        fail(err);
      }
    });

  common(msg.command("send")
    .description("send one message and report what the service did with it (exit 0 accepted/queued, 1 refused, 3 no answer)")
    .argument("<text...>", "the message")
    .requiredOption("--from <number>", "the sender's number")
    .requiredOption("--to <number>", "the recipient's number")
    .option("--via <service>", `${SERVICES.join(" | ")} (default: whatsapp, or the endpoint's service)`)
    .option("--wait-delivery", "also wait for the delivery receipt")
    .option("--timeout <seconds>", "how long to wait for each answer", "10"))
    .action(async (words: string[], o: Common & { from: string; to: string; via?: string; waitDelivery?: boolean; timeout: string }) => {
      try {
        const ms = Number(o.timeout) * 1000;
        if (!(ms > 0)) throw new Error(`--timeout must be a positive number of seconds, got "${o.timeout}"`);
        const service = via(o.via);
        const c = await open(o);
        await c.register(o.from, o.network);
        const id = `m${process.pid}-${Date.now()}`;
        const receipt = o.waitDelivery ? c.next((f) => f.type === "receipt" && f.id === id, ms) : undefined;
        const { answer } = await c.send(o.to, words.join(" "), { ...(service ? { via: service } : {}), id, ms });
        const print = (f: RelayFrame | null, text: string): void => {
          process.stdout.write(o.json ? `${JSON.stringify(f ?? { type: "timeout", id })}\n` : `${text}\n`);
        };
        if (!answer) {
          print(null, `no answer within ${o.timeout} s: the service is silent`);
          process.exit(3);
        }
        if (answer.type === "error") {
          print(answer, `${answer.code}: ${answer.message}`);
          process.exit(1);
        }
        print(answer, answer.type === "ack" ? answer.status : answer.type);
        if (receipt) {
          const r = await receipt;
          print(r, r ? `delivered to ${o.to}` : `not delivered within ${o.timeout} s`);
          if (!r) process.exit(3);
        }
        c.close();
        process.exit(0);
      } catch (err) {
        fail(err);
      }
    });
}
