#!/usr/bin/env bash
# A probe author's CI step: start the lab with a regime, run the probe through its entries,
# score the probe's results against the lab's event log; exit 1 when a threshold is missed.
# The GitHub Actions and GitLab CI examples beside this file call it; chokepoint's own CI
# runs it too (test/probe/ci-example.test.ts), so it stays true.
#
# Settings (environment):
#   PROFILE, AT, NETWORK   the regime, the instant and the client's network
#   TARGETS                a file of targets: one URL or name a line, or an OONI test-lists CSV
#   PROBE                  your probe's command; it is called as
#                            $PROBE --control URL --network NET --out FILE --targets TARGETS
#                          and must write one result a line (OONI measurement JSON, or
#                          {target, time, network?, verdict}). Default: the reference probe.
#   MIN_RECALL, MAX_FALSE_POSITIVE   the thresholds (default 0.95 and 0.05)
#   CHOKEPOINT             how to run chokepoint (default: npx --no-install chokepoint)
#   OUT                    where to keep events.jsonl and results.jsonl (default: a temporary directory)
set -euo pipefail
: "${PROFILE:=kz-2024-tls-timeout}" "${AT:=2024-05-14T20:00}" "${NETWORK:=kazakhtelecom-megaline}"
: "${MIN_RECALL:=0.95}" "${MAX_FALSE_POSITIVE:=0.05}" "${CHOKEPOINT:=npx --no-install chokepoint}"
: "${TARGETS:?set TARGETS to a file of targets (one URL or name a line, or an OONI test-lists CSV)}"
: "${PROBE:=$CHOKEPOINT probe}"
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"

# The lab, on ephemeral loopback ports, in a process group of its own (stopped on exit).
setsid $CHOKEPOINT up --profile "$PROFILE" --at "$AT" --network "$NETWORK" --ports auto --json \
  --events "$OUT/events.jsonl" > "$OUT/up.json" 2> "$OUT/up.log" &
lab=$!
trap 'kill -TERM -- -$lab 2>/dev/null || true; wait $lab 2>/dev/null || true' EXIT
for _ in $(seq 300); do
  [ -s "$OUT/up.json" ] && break
  kill -0 $lab 2>/dev/null || { echo "the lab did not start:" >&2; cat "$OUT/up.log" >&2; exit 2; }
  sleep 0.1
done
[ -s "$OUT/up.json" ] || { echo "the lab was not ready within 30 s" >&2; exit 2; }
control=$(node -e 'const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").split("\n")[0]).endpoints.control; console.log(`http://${c.host}:${c.port}`)' "$OUT/up.json")
echo "lab up: $PROFILE at $AT on $NETWORK, control API $control" >&2

$PROBE --control "$control" --network "$NETWORK" --out "$OUT/results.jsonl" --targets "$TARGETS"

# Stop the lab (it flushes its event log), then score.
kill -TERM -- -$lab
wait $lab || true
trap - EXIT
$CHOKEPOINT score --events "$OUT/events.jsonl" --network "$NETWORK" \
  --min-recall "$MIN_RECALL" --max-false-positive "$MAX_FALSE_POSITIVE" "$OUT/results.jsonl"
