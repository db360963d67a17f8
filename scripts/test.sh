#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, then runs it.
# Extra arguments go to `cargo test` (e.g. ./scripts/test.sh pipeline).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/deps.sh
extra=()
# python3 for Schemathesis, in a virtualenv (the GUI tests draw headless, without an X server).
command -v python3 >/dev/null || extra+=(python3 python3-pip)
python3 -c "import venv, ensurepip" 2>/dev/null || extra+=(python3-venv)
# The test broker: Apache Kafka, assembled from Maven Central by scripts/kafka.sh (Java 17, Maven).
command -v java >/dev/null || extra+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || extra+=(maven)
# The fault tests: strace injects I/O errors, nftables drops packets in a network namespace (iproute2).
command -v strace >/dev/null || extra+=(strace)
command -v nft >/dev/null || extra+=(nftables)
command -v ip >/dev/null || extra+=(iproute2)
# lintian checks the .deb the package test builds.
command -v lintian >/dev/null || extra+=(lintian)
# systemd-analyze rates the hardening of the systemd units in the package test.
command -v systemd-analyze >/dev/null || extra+=(systemd)
# The notification and tray tests: a private bus (dbus-daemon), dbus-monitor and dbus-send
# (dbus-bin), dunst as the notification service on an Xvfb display, xdotool to find the window.
for package in xvfb dbus-daemon dbus-bin dunst xdotool; do dpkg -s "$package" >/dev/null 2>&1 || extra+=("$package"); done
# desktop-file-validate checks the start-at-login entry the Settings test writes.
command -v desktop-file-validate >/dev/null || extra+=(desktop-file-utils)
# libfaketime steps one agent's wall clock in the time-truth tests.
dpkg -s libfaketime >/dev/null 2>&1 || extra+=(libfaketime)
# poppler-utils (pdfinfo, pdftotext, pdfdetach) reads the statement PDFs back in their unit tests.
dpkg -s poppler-utils >/dev/null 2>&1 || extra+=(poppler-utils)
# openssl makes the test CA, the broker's certificate and the security tests' untrusted CA.
command -v openssl >/dev/null || extra+=(openssl)
install_debian_packages "${extra[@]}"

# Fetch the broker once, before the tests start it (a cache outside the checkout, verified on use).
if [ -z "${USAGEBILL_TEST_BOOTSTRAP:-}" ]; then
    echo "test broker: Apache Kafka in $(./scripts/kafka.sh fetch)"
else
    echo "shared test broker: $USAGEBILL_TEST_BOOTSTRAP (the fault and security tests start Apache Kafka of their own)"
fi

# One test at a time by default: the fault tests start Apache Kafka nodes (three at once for the
# cluster) and the GUI tests render in software; on two cores, side by side, a GUI test's agent was
# seen waiting over 30 s for its first status. RUST_TEST_THREADS=2 runs two at once.
RUST_TEST_THREADS="${RUST_TEST_THREADS:-1}" cargo test --all-targets "$@"

# The HTTP API against its own OpenAPI document with Schemathesis (from PyPI): no 5xx, every
# response as documented. Only on a full run: arguments select a few Rust tests.
if [ $# -eq 0 ]; then
    ./scripts/schemathesis.sh
fi
