// Progress of long work on a terminal (stderr), rewritten in place; silent elsewhere.
import { formatBytes } from "./style.js";

export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): ((what: string, done: number, total: number) => void) | undefined {
  if (!stream.isTTY) return undefined;
  let last = 0;
  return (what, done, total) => {
    const now = Date.now();
    if (done < total && now - last < 100) return;
    last = now;
    const pct = total ? Math.floor((done / total) * 100) : 100;
    const amount = what.startsWith("loading") ? `${formatBytes(done)} of ${formatBytes(total)}` : `${done.toLocaleString("en")} of ${total.toLocaleString("en")} entries`;
    stream.write(`\r\x1b[2K${what}: ${pct}% (${amount})`);
    if (done >= total) stream.write("\r\x1b[2K");
  };
}
