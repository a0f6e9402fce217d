// The world's origin in a thread of its own (so that serving the world and intercepting the
// flows to it use two cores). Built from the same world data and config directory as the lab.
import { parentPort, workerData } from "node:worker_threads";
import { Pki } from "../pki/pki.js";
import type { WorldData } from "./data.js";
import { Origin, sharedStats } from "./origin.js";
import { World } from "./world.js";

export interface OriginWorkerData {
  world: { data: WorldData; knownNames: string[]; mode: "lab" | "internet" };
  confdir: string;
  host: string;
  port: number;
  stats: SharedArrayBuffer;
}

if (parentPort) {
  const d = workerData as OriginWorkerData;
  const world = new World(d.world.data, { mode: d.world.mode, knownNames: d.world.knownNames });
  const origin = new Origin(world, new Pki(d.confdir), sharedStats(d.stats));
  origin.listen(d.host, d.port).then(
    () => parentPort!.postMessage({ type: "listening", address: origin.address }),
    (err: Error) => parentPort!.postMessage({ type: "error", message: err.message }),
  );
  parentPort.on("message", (m: { type: string }) => {
    if (m.type === "close") void origin.close().then(() => parentPort!.postMessage({ type: "closed" }));
  });
}
