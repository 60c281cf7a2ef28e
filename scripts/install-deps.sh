#!/usr/bin/env bash
# Installs the Debian packages evbus builds and tests with. Idempotent, and silent when nothing
# is missing.
set -euo pipefail

PACKAGES=(
  g++ cmake ninja-build pkg-config
  librdkafka-dev libcli11-dev libfmt-dev libyaml-cpp-dev nlohmann-json3-dev doctest-dev
  libcpp-httplib-dev
  kcat clang-format
)
# The broker runs from Maven-fetched jars on a JDK when no Docker engine answers.
command -v java >/dev/null 2>&1 || PACKAGES+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || PACKAGES+=(maven)
command -v python3 >/dev/null 2>&1 || PACKAGES+=(python3 python3-venv)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0

SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
