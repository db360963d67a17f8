#!/usr/bin/env bash
# Fuzzes the worker's HTTP API with Schemathesis against its own OpenAPI document: no 5xx, and every
# response must match the document (status, content type, headers, schema).
#
#   ./scripts/schemathesis.sh                 # starts Apache Kafka (scripts/kafka.sh), fills a ledger, runs a worker, fuzzes it
#   ./scripts/schemathesis.sh http://HOST:PORT  # fuzzes a worker that is already running
#
# Extra Schemathesis flags go in ST_ARGS (e.g. ST_ARGS="--max-examples 200"). With a token, set
# USAGEBILL_API_TOKEN and it is sent as a bearer token.
set -euo pipefail
cd "$(dirname "$0")/.."
kafka_sh="$PWD/scripts/kafka.sh"

venv="${SCHEMATHESIS_VENV:-$PWD/target/schemathesis-venv}"
if [ ! -x "$venv/bin/st" ]; then
    echo "installing schemathesis into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet schemathesis
fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

base_url="${1:-}"
started=()
cleanup() {
    # Only the processes this script started, by their ids.
    for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${started[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "${scratch:-}" ] && [ -d "$scratch/kafka" ]; then "$kafka_sh" stop "$scratch/kafka"; fi
    rm -rf "${scratch:-}" "${st_dir:-}"
}
trap cleanup EXIT

if [ -z "$base_url" ]; then
    cargo build --quiet
    binary="${CARGO_TARGET_DIR:-target}/debug/usagebill"
    scratch="$(mktemp -d)"
    # A single Apache Kafka node; its listeners take four ports from a free base below the ephemeral range.
    broker_port="$(python3 -c '
import random, socket
def free(port):
    with socket.socket() as s:
        try: s.bind(("127.0.0.1", port)); return True
        except OSError: return False
while True:
    base = random.randrange(20000, 32000, 10)
    if all(free(base + i) for i in range(4)): print(base); break')"
    "$kafka_sh" init "$scratch/kafka" --port "$broker_port" >/dev/null
    "$kafka_sh" start "$scratch/kafka" >/dev/null
    export USAGEBILL_DATA_DIR="$scratch/data" USAGEBILL_CONFIG="$scratch/config.toml" USAGEBILL_BROKERS="127.0.0.1:$broker_port"
    "$binary" simulate --machines 5 --records 2000 --window 5m --profile random
    api_port="$(free_port)"
    "$binary" worker --http "127.0.0.1:$api_port" >"$scratch/worker.log" 2>&1 &
    started+=($!)
    base_url="http://127.0.0.1:$api_port"
    # Wait until the worker has billed something, so the tables are not empty.
    for _ in $(seq 200); do
        billed="$(curl -fsS "$base_url/metrics" 2>/dev/null | awk '$1 == "usagebill_records_billed_total" { print $2 }' || true)"
        [ "${billed:-0}" -ge 2000 ] && break
        sleep 0.1
    done
    echo "worker at $base_url has billed ${billed:-0} record(s)"
fi

auth=()
if [ -n "${USAGEBILL_API_TOKEN:-}" ]; then auth=(-H "Authorization: Bearer $USAGEBILL_API_TOKEN"); fi
# All checks, positive_data_acceptance included: every request the document calls valid must be
# answered (a 2xx, or a 404 for a machine the ledger does not know), never refused with a 400.
# Run from a scratch dir: Schemathesis keeps a `.schemathesis/` cache in its working directory.
st_dir="$(mktemp -d)"
cd "$st_dir"
# shellcheck disable=SC2086
"$venv/bin/st" run "$base_url/api/v1/openapi.json" --checks all --workers 2 "${auth[@]}" ${ST_ARGS:-}
