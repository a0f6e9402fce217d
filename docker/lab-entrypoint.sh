#!/bin/sh
# The lab image's entrypoint: `chokepoint up` with its settings from the environment.
#   PROFILE   profile ids, comma separated (or COUNTRY with AT/FROM: time travel)
#   AT FROM SPEED VARIANT NETWORK COUNTRY    as the `up` options of the same names
#   GATEWAY   client subnets this container is the gateway of, comma separated, each
#             CIDR[=NETWORK], or "auto" (every subnet it is attached to); needs root and NET_ADMIN
#   SERVICES  with GATEWAY: subnets of your own servers the censor may connect to
#   DATAPATH  with GATEWAY: proxy or onpath (default: onpath for a profile with a box model;
#             needs NET_RAW too)
#   EVENTS    the event log (default /var/log/chokepoint/events.jsonl)
#   CONTROL_TOKEN  the control API's token (port 8470; default: made up and printed)
# Arguments starting with "-" are added to `up`; any other command runs instead (e.g. `chokepoint list`).
set -eu
if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then exec "$@"; fi
set -- up --listen 0.0.0.0 --events "${EVENTS:-/var/log/chokepoint/events.jsonl}" "$@"
add_list() { # $1 option, $2 comma or space separated values
  for v in $(printf '%s' "$2" | tr ',' ' '); do ARGS="$ARGS $1 $v"; done
}
ARGS=""
add_list --profile "${PROFILE:-}"
add_list --gateway "${GATEWAY:-}"
add_list --services "${SERVICES:-}"
for pair in "--control-token:${CONTROL_TOKEN:-}" "--country:${COUNTRY:-}" "--at:${AT:-}" "--from:${FROM:-}" "--speed:${SPEED:-}" "--variant:${VARIANT:-}" "--network:${NETWORK:-}" "--datapath:${DATAPATH:-}"; do
  opt=${pair%%:*}; val=${pair#*:}
  if [ -n "$val" ]; then ARGS="$ARGS $opt $val"; fi
done
# Values have no spaces (ids, instants, subnets), so word splitting is safe here.
# shellcheck disable=SC2086
exec chokepoint "$@" $ARGS
