#!/usr/bin/env bash
# install-deps.sh - install the Debian packages ledger builds and tests with.
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail
PKGS="build-essential cmake pkg-config git libsqlite3-dev libgit2-dev libssl-dev libcjson-dev
      libopenblas-dev python3 python3-numpy python3-scipy python3-torch librsvg2-bin clang libclang-rt-14-dev
      slurm-wlm munge"
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "install-deps: installing:$missing" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
