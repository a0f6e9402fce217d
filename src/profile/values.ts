// Value schemas profiles share: durations, rates, probabilities.
import { z } from "zod";

export const Duration = z.union([
  z.number().nonnegative(),
  z.string().regex(/^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d)?)+$/, 'a duration such as "90s", "15m", "2h" or "500ms"'),
]);
export const Rate = z.union([
  z.number().positive(),
  z.string().regex(/^\d+(?:\.\d+)?\s*(?:bit|kbit|mbit|gbit|b|kb|mb|gb|bps|kbps|mbps|gbps)?(?:\/s)?$/i, 'a rate such as "64kbit", "16KB/s" or a number of bytes per second'),
]);
export const Probability = z.number().min(0).max(1);
