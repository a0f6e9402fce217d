// The world's origin process (see origin-process.ts): built from the same world data and
// config directory as the lab; reports its counters.
import { Pki } from "../pki/pki.js";
import type { WorldData } from "./data.js";
import { Origin } from "./origin.js";
import { World } from "./world.js";

type Message =
  | { type: "init"; world: { data: WorldData; knownNames: string[]; mode: "lab" | "internet" }; confdir: string; host: string; port: number; transparent?: boolean; secret?: string }
  | { type: "stats" }
  | { type: "ping" }
  | { type: "close" };

if (process.send) {
  // A terminal's Ctrl-C reaches the whole process group: the lab decides when this process stops (over IPC).
  process.on("SIGINT", () => undefined);
  let origin: Origin | undefined;
  let last = "";
  const report = (force = false): void => {
    if (!origin || !process.connected) return;
    const text = JSON.stringify(origin.stats);
    if (force || text !== last) {
      last = text;
      process.send!({ type: "stats", stats: origin.stats });
    }
  };
  setInterval(report, 100).unref();
  process.on("message", (m: Message) => {
    if (m.type === "init") {
      const world = new World(m.world.data, { mode: m.world.mode, knownNames: m.world.knownNames });
      origin = new Origin(world, new Pki(m.confdir));
      origin.transparent = !!m.transparent;
      origin.secret = m.secret;
      origin.listen(m.host, m.port).then(
        async () => {
          // Behind TPROXY in the world namespace: one listener for every address and port.
          if (m.transparent) (await import("../util/sockopt.js")).setTransparent(origin!.server!);
          process.send!({ type: "listening", address: origin!.address });
        },
        (err: Error) => process.send!({ type: "error", message: err.message }),
      );
    } else if (m.type === "ping") {
      process.send!({ type: "pong" });
    } else if (m.type === "stats") {
      report(true);
    } else if (m.type === "close") {
      void origin?.close().then(() => process.exit(0));
    }
  });
  process.on("disconnect", () => process.exit(0));
}
