// The live feed of `up` on a terminal: one coloured line per decision, and running counters
// on a status line kept at the bottom.
import type { Lab } from "../lab/lab.js";
import type { LabEvent } from "../events/types.js";
import { actionColour, c } from "./style.js";
import { formatInstant } from "../util/time.js";

/** Lab time as the feed shows it: in the regime's zone, with its offset (every clock says its zone). */
function when(iso: string, tz: string): string {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? formatInstant(t, tz).replace("T", " ") : iso;
}

export function describeEvent(e: LabEvent, tz = "UTC"): string {
  const o = e.observation ?? {};
  const target = o.name ?? o.sni ?? o.host ?? o.service ?? (o.ip !== undefined ? `${String(o.ip)}:${String(o.port ?? "")}` : "");
  const type = o.qtype ? ` ${String(o.qtype)}` : o.leg ? ` ${String(o.from)} -> ${String(o.to)} (${String(o.leg)}: ${String(e.detail?.status ?? "")})` : "";
  const why = e.rule ? ` ${c.dim(`by ${e.profile}/${e.rule}${e.seed ? ` (seed ${e.seed})` : ""}`)}` : "";
  return `${c.dim(when(e.labTime, tz))} ${e.component.padEnd(11)} ${(e.network ?? "-").padEnd(18)} ${actionColour(e.action)(e.action.padEnd(9))} ${String(target)}${type}${why}`;
}

function countersLine(lab: Lab): string {
  const parts = Object.entries(lab.eventLog.counters).map(([action, byNet]) => {
    const n = Object.values(byNet).reduce((a, b) => a + b, 0);
    return actionColour(action)(`${action} ${n}`);
  });
  return `${c.bold("lab time")} ${when(new Date(lab.clock.now()).toISOString(), lab.profiles[0]?.timezone ?? "UTC")}  ${lab.clock.paused ? c.yellow("paused ") : ""}${parts.join("  ") || c.dim("no decisions yet")}`;
}

/** Starts the feed; returns a function that stops it. */
export function startFeed(lab: Lab, stream: NodeJS.WriteStream = process.stdout): () => void {
  const tty = !!stream.isTTY;
  const redraw = (): void => { if (tty) stream.write(`\r\x1b[2K${countersLine(lab)}`); };
  const unsubscribe = lab.eventLog.subscribe((e) => {
    stream.write(`${tty ? "\r\x1b[2K" : ""}${describeEvent(e, lab.profiles[0]?.timezone ?? "UTC")}\n`);
    redraw();
  });
  const timer = tty ? setInterval(redraw, 1000) : undefined;
  timer?.unref();
  redraw();
  return () => {
    unsubscribe();
    if (timer) clearInterval(timer);
    if (tty) stream.write("\r\x1b[2K");
  };
}
