#!/usr/bin/env bash
# Shared set-up for scripts/start and scripts/test: virtualenv, pinned packages, Keycloak distribution.
# Idempotent; fast when everything is already there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "» Creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(sha256sum "$ROOT/requirements.lock" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "» Installing pinned Python packages"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r "$ROOT/requirements.lock"
  "$VENV/bin/pip" install -q --no-deps -e "$ROOT"
  touch "$stamp"
fi
if ! command -v mvn >/dev/null 2>&1 && [ -z "${KEYCLOAK_HOME:-}" ]; then
  echo "» Installing Maven (to fetch Keycloak from Maven Central)"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq maven >/dev/null
  else echo "Maven is missing: install it (apt-get install maven) or set KEYCLOAK_HOME" >&2; exit 1; fi
fi
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then  # the portal's PDF documents embed it
  echo "» Installing the DejaVu fonts (the portal's PDF documents)"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core >/dev/null
  else echo "The DejaVu fonts are missing: sudo apt-get install fonts-dejavu-core" >&2; exit 1; fi
fi
echo "» Keycloak distribution: $(cd "$ROOT" && "$VENV/bin/python" -m devstack.keycloak_server fetch)"
