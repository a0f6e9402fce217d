# Client tools for demos and tests: curl, dig, openssl, tor, obfs4proxy, behind the censor.
#   docker build -f docker/client.Dockerfile -t chokepoint-client:local .
# Its entrypoint routes the container through the censor (CHOKEPOINT_GATEWAY, an address of
# the lab container), trusts the lab CA when it is mounted, then drops NET_ADMIN and runs
# the command.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates curl bind9-dnsutils openssl tor obfs4proxy iproute2 netcat-openbsd \
 && rm -rf /var/lib/apt/lists/*
COPY docker/client-entrypoint.sh /usr/local/bin/chokepoint-client
RUN chmod 0755 /usr/local/bin/chokepoint-client
ENTRYPOINT ["chokepoint-client"]
CMD ["sleep", "infinity"]
