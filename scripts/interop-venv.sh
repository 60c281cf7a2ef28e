#!/usr/bin/env bash
# Creates (once) the virtual environment the interop tests run eventsource-py in, installs the
# pinned packages of tests/interop/requirements.txt when they changed, and prints the venv's
# python path on stdout (everything else goes to stderr). Idempotent and quiet when up to date.
# Venv folder: $EVBUS_INTEROP_VENV, default <repo>/.venv-interop.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${EVBUS_INTEROP_VENV:-$ROOT/.venv-interop}
REQUIREMENTS=$ROOT/tests/interop/requirements.txt
PYTHON=${EVBUS_INTEROP_BASE_PYTHON:-python3}

# Debian's python3 has no ensurepip without python3-venv; install it rather than fail later.
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    echo "interop-venv: installing python3-venv" >&2
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  else
    echo "interop-venv: $PYTHON cannot create virtual environments (no ensurepip)" >&2
    exit 1
  fi
fi

if [[ ! -x $VENV/bin/python ]]; then
  echo "interop-venv: creating $VENV" >&2
  "$PYTHON" -m venv "$VENV" >&2
fi
# Keep the venv out of git without touching the repository's .gitignore.
[[ -f $VENV/.gitignore ]] || echo '*' >"$VENV/.gitignore"

# The stamp records which requirements were installed, so a changed pin reinstalls.
STAMP=$VENV/.evbus-requirements
if ! cmp -s "$REQUIREMENTS" "$STAMP"; then
  echo "interop-venv: installing $(grep -m1 '^eventsource-py' "$REQUIREMENTS")" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$REQUIREMENTS" >&2
  cp "$REQUIREMENTS" "$STAMP"
fi

echo "$VENV/bin/python"
