#!/usr/bin/env bash
# Reproduces docs/screenshots/{usage,send,costs,settings}.png: runs the app under Xvfb in embedded
# mode on a temp data dir, with two headless agents billed into the same ledger first so the Costs
# tab has several machines, lets the charts fill for WARMUP seconds, then clicks each tab and grabs
# the screen. With MEASURE_SECONDS=N it then reports the app's CPU % and RSS over N seconds on the
# Usage tab (charts live).
#
#   scripts/screenshots.sh [BINARY] [WARMUP]     (defaults: target/release/usagebill, 60)
#
# Needs: xvfb, xdotool, imagemagick, libgl1-mesa-dri (apt-get install them).
set -euo pipefail
binary="$(realpath "${1:-$(dirname "$0")/../target/release/usagebill}")"
cd "$(dirname "$0")/.."

warmup="${2:-60}"
measure="${MEASURE_SECONDS:-0}"
width=1100
height=720
display=":${SCREENSHOT_DISPLAY:-93}"
data="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT

# Two other machines, billed into the app's ledger through its [worker] ledger setting.
mkdir -p "$data/app"
for machine in rack-a:85 rack-b:15; do
    name="${machine%%:*}"
    mkdir -p "$data/$name"
    printf '[worker]\nledger = "%s"\n' "$data/app/ledger.db" >"$data/$name/config.toml"
    printf '{"cpu_pct": %s, "mem_used_bytes": 6000000000, "net_rx_bytes_per_sec": 2000000, "net_tx_bytes_per_sec": 400000}\n' \
        "${machine##*:}" >"$data/$name/readings.jsonl"
    "$binary" --config "$data/$name/config.toml" --data-dir "$data/$name" agent --headless --machine-id "$name" \
        --interval 1s --sample-interval 250ms --run-for 8s --readings "$data/$name/readings.jsonl" 2>/dev/null
done

Xvfb "$display" -screen 0 "${width}x${height}x24" -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
export DISPLAY="$display"
for _ in $(seq 50); do xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.1; done

# A SASL password in the config shows how the Settings tab masks secrets.
printf '[agent]\nmachine_id = "desk-1"\nsend_interval = "5s"\n\n[kafka.properties]\n"sasl.username" = "desk-1"\n"sasl.password" = "not-shown-anywhere"\n' \
    >"$data/app/config.toml"
"$binary" --config "$data/app/config.toml" --data-dir "$data/app" 2>"$data/app.log" &
app_pid=$!
pids+=("$app_pid")
for _ in $(seq 100); do xdotool search --name '^usagebill$' >/dev/null 2>&1 && break; sleep 0.1; done
window="$(xdotool search --name '^usagebill$' | head -n1)"
# No window manager runs under Xvfb: place and size the window by hand to fill the screen.
xdotool windowmove "$window" 0 0 windowsize "$window" "$width" "$height"
echo "letting the charts fill for ${warmup}s"
sleep "$warmup"

# Tab labels sit in the top bar; x positions measured from a first screenshot at this size.
click() { xdotool mousemove "$1" "$2" click 1; sleep "${3:-1.5}"; xdotool mousemove "$width" "$height"; }
mkdir -p docs/screenshots
shoot() { sleep 0.5; import -window root "docs/screenshots/$1.png"; echo "docs/screenshots/$1.png"; }
click 30 16 && shoot usage
click 94 16 && click 70 60 2 && shoot send
click 150 16 && shoot costs
click 222 16 && shoot settings

if [ "$measure" -gt 0 ]; then
    click 30 16
    ticks_per_sec="$(getconf CLK_TCK)"
    cpu_ticks() { awk '{print $14 + $15}' "/proc/$app_pid/stat"; }
    before="$(cpu_ticks)"
    rss_max=0
    for _ in $(seq "$measure"); do
        sleep 1
        rss="$(awk '/^VmRSS:/{print $2}' "/proc/$app_pid/status")"
        [ "$rss" -gt "$rss_max" ] && rss_max="$rss"
    done
    after="$(cpu_ticks)"
    awk -v ticks="$((after - before))" -v hz="$ticks_per_sec" -v secs="$measure" -v rss="$rss" -v peak="$rss_max" \
        'BEGIN { printf "app over %ds on the Usage tab: CPU %.1f %% of one core, RSS %d MiB (peak %d MiB)\n", secs, ticks / hz / secs * 100, rss / 1024, peak / 1024 }'
fi
