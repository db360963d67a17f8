#!/usr/bin/env bash
# Installs what usagebill needs on a fresh Debian machine, then builds and opens the desktop app
# (embedded mode unless brokers are configured). Extra arguments go to usagebill.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
install_debian_packages
exec cargo run --release -- "$@"
