// Terminal colours (off when not a TTY or NO_COLOR is set) and small formatting helpers.
import { shownAs, type Shown } from "../profile/actions.js";

const on = (stream: NodeJS.WriteStream): boolean => !!stream.isTTY && !process.env.NO_COLOR;
const wrap = (code: string) => (text: string, stream: NodeJS.WriteStream = process.stdout): string =>
  on(stream) ? `\x1b[${code}m${text}\x1b[0m` : text;

export const c = {
  red: wrap("31"), green: wrap("32"), yellow: wrap("33"), blue: wrap("34"),
  magenta: wrap("35"), cyan: wrap("36"), dim: wrap("2"), bold: wrap("1"),
};

const SHOWN: Record<Shown, (t: string, s?: NodeJS.WriteStream) => string> = { allow: c.green, degrade: c.yellow, intercept: c.magenta, block: c.red };

/** Colour for an action in the feed (the action table's `shown`): blocking red, degrading yellow, interception magenta. */
export function actionColour(action: string): (t: string, s?: NodeJS.WriteStream) => string {
  return SHOWN[shownAs(action)];
}

export function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}
