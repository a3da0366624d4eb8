#!/bin/bash
# The entrypoint of docker-compose.yml's Keycloak containers: a container started again after its node crashed first
# deletes the discovery row the dead node left (docker/forget-node/ForgetNode.java), then runs `kc.sh` with the
# container's command. The node's name is KC_SPI_CACHE_EMBEDDED_DEFAULT_NODE_NAME.
set -euo pipefail
if [ -n "${KC_SPI_CACHE_EMBEDDED_DEFAULT_NODE_NAME:-}" ] && [ "${1:-}" = start ]; then
  java -cp "/opt/cimr:/opt/keycloak/lib/lib/main/*" ForgetNode "$KC_SPI_CACHE_EMBEDDED_DEFAULT_NODE_NAME" \
    || echo "keycloak-start: could not check the discovery table; starting anyway" >&2
fi
exec /opt/keycloak/bin/kc.sh "$@"
