#!/bin/sh
# Entrypoint of the client-tools image.
#   CHOKEPOINT_GATEWAY  the lab container's address on this network: becomes the default
#                       route and the resolver (needs --cap-add NET_ADMIN, dropped before CMD)
#   CHOKEPOINT_CA       the lab CA to trust system-wide (default /etc/chokepoint/ca/lab.pem,
#                       where the compose file mounts the lab's config volume); waited for
set -eu
if [ -n "${CHOKEPOINT_GATEWAY:-}" ]; then
  if ! ip route replace default via "$CHOKEPOINT_GATEWAY" 2>/dev/null; then
    echo "chokepoint-client: cannot route through $CHOKEPOINT_GATEWAY (is NET_ADMIN granted? --cap-add NET_ADMIN)" >&2
    exit 1
  fi
  # Every DNS query then goes to the censor (which answers any resolver address anyway).
  printf 'nameserver %s\n' "$CHOKEPOINT_GATEWAY" > /etc/resolv.conf 2>/dev/null || true
fi
ca=${CHOKEPOINT_CA:-/etc/chokepoint/ca/lab.pem}
if [ -d "$(dirname "$ca")" ] || [ -n "${CHOKEPOINT_CA:-}" ]; then
  i=0
  while [ ! -s "$ca" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  if [ -s "$ca" ]; then
    cp "$ca" /usr/local/share/ca-certificates/chokepoint-lab.crt
    update-ca-certificates >/dev/null 2>&1 || echo "chokepoint-client: could not add the lab CA to the trust store" >&2
  else
    echo "chokepoint-client: no lab CA at $ca (yet); HTTPS to the lab world will not verify" >&2
  fi
fi
# (testcontainers waits for this line before using the container.)
echo "chokepoint-client: ready (gateway ${CHOKEPOINT_GATEWAY:-none})" >&2
# The command runs without NET_ADMIN: the tool under test cannot undo the routing.
if command -v setpriv >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  exec setpriv --bounding-set=-net_admin --inh-caps=-net_admin -- "$@"
fi
exec "$@"
