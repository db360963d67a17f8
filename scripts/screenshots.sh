#!/usr/bin/env bash
# Reproduces docs/screenshots/{usage,send,costs,forecast,statements,settings,offline,notification,tray}.png: runs the app under
# Xvfb in embedded mode on a temp data dir, with two headless agents billed into the same ledger first
# so the Costs tab has several machines, two weeks of two simulated office machines billed into it
# from a broker of our own (scripts/kafka.sh) so it has forecasts, and this machine's agent run under libfaketime in the two months
# before this one, then closed, so the Statements tab has final statements; lets the charts fill for
# WARMUP seconds, then clicks each tab and grabs the screen. Then, in Kafka mode on a private D-Bus
# session with dunst as the notification service, it reads a fleet's costs from the broker, stops the
# broker, and opens the app again: the offline Costs tab and the outage notification; then opens it
# once more beside xfce4-panel, a tray host, and right-clicks its icon: the tray menu. With
# MEASURE_SECONDS=N it then reports the app's CPU % and RSS over N seconds on the Usage tab.
#
#   scripts/screenshots.sh [BINARY] [WARMUP]     (defaults: target/release/usagebill, 60)
#
# Needs: xvfb, xdotool, imagemagick, libgl1-mesa-dri, libfaketime, dbus-daemon, dunst, xfce4-panel (apt-get
# install them), and Java for the broker (port 9092 free).
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
    [ -d "$data/kafka" ] && scripts/kafka.sh stop "$data/kafka" >/dev/null 2>&1
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

# Two office machines with two weeks of hourly history up to this hour, so that the Costs tab has
# forecasts to show: simulated onto a broker of our own, billed into the app's ledger by a worker.
scripts/kafka.sh up "$data/kafka" >/dev/null
kafka=(--brokers 127.0.0.1:9092 --topic office --data-dir "$data/office")
from="$(date -u -d "$(date -u '+%Y-%m-%d %H:00') 14 days ago" +%Y-%m-%dT%H:00:00Z)"
"$binary" "${kafka[@]}" simulate --profile office --machine-prefix office- --machines 2 --records 672 --window 1h --start "$from" 2>/dev/null
"$binary" "${kafka[@]}" worker --ledger "$data/app/ledger.db" --exit-when-idle 5s --no-feed 2>/dev/null
scripts/kafka.sh stop "$data/kafka" >/dev/null

Xvfb "$display" -screen 0 "${width}x${height}x24" -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
export DISPLAY="$display"
for _ in $(seq 50); do xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.1; done

# A SASL password in the config shows how the Settings tab masks secrets.
printf '[agent]\nmachine_id = "desk-1"\nsend_interval = "5s"\n\n[billing]\naccounts = "%s"\n\n[kafka.properties]\n"sasl.username" = "desk-1"\n"sasl.password" = "not-shown-anywhere"\n' \
    "$data/accounts.toml" >"$data/app/config.toml"
printf '[[version]]\neffective_from = "2020-01-01T00:00:00Z"\n\n[[version.account]]\nid = "acme"\nname = "Acme Corp"\nmachines = ["desk-*", "rack-*", "office-*"]\n' \
    >"$data/accounts.toml"

# This machine's agent, in the app's data dir (the app's agent carries on its seqs), on a wall clock
# set to the middle of each of the two months before this one, then on the real one; heavy traffic
# makes a few seconds cost cents. Then last month is closed, and the one before with it: two final
# statements and this month's draft. On a month's first day last month is still in its grace period
# and cannot close yet.
printf '{"cpu_pct": 70, "mem_used_bytes": 6000000000, "net_rx_bytes_per_sec": 900000000, "net_tx_bytes_per_sec": 600000000}\n' \
    >"$data/past.jsonl"
this_month="$(date -u +%Y-%m-01)"
for run in 40:12s 12:8s 0:4s; do
    at="$(date -u -d "$this_month -${run%%:*} days" '+%Y-%m-%d 09:00:00')"
    [ "${run%%:*}" = 0 ] && at="$(date -u '+%Y-%m-%d %H:%M:%S')"
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 FAKETIME_DONT_FAKE_MONOTONIC=1 FAKETIME="@$at" \
        "$binary" --config "$data/app/config.toml" --data-dir "$data/app" agent --headless --interval 1s --sample-interval 250ms \
        --run-for "${run##*:}" --readings "$data/past.jsonl" 2>/dev/null
done
"$binary" --config "$data/app/config.toml" --data-dir "$data/app" statement close --period "$(date -u -d "$this_month -1 day" +%Y-%m)" ||
    echo "last month could not be closed yet: the Statements tab shows its draft"
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
# The first office machine's row, then its period and forecast.
click 90 174 && click 401 282 2 && shoot forecast
# The Statements tab reads when opened; Export CSV on the newest statement shows where the file went.
click 246 16 2 && click 659 206 2 && shoot statements
click 341 16 && shoot settings

# Offline: a fleet's costs read from the broker once (the app keeps them on disk), then the broker
# stopped and the app opened again, in Kafka mode with notifications on a private bus.
mkdir -p "$data/fleet"
printf '[agent]\nmachine_id = "desk-1"\nsend_interval = "1s"\n\n[kafka]\nbrokers = ["127.0.0.1:9092"]\ntopic = "fleet"\nmessage_timeout = "5s"\n\n[notifications]\noutage_after = "30s"\n' \
    >"$data/fleet/config.toml"
fleet=(--config "$data/fleet/config.toml" --data-dir "$data/fleet")
scripts/kafka.sh up "$data/kafka" >/dev/null
"$binary" "${fleet[@]}" simulate --profile office --machine-prefix office- --machines 6 --records 2016 --window 1h --start "$from" 2>/dev/null
"$binary" "${fleet[@]}" worker --ledger "$data/fleet/worker.db" --exit-when-idle 20s 2>/dev/null
kill "$app_pid" 2>/dev/null || true
wait "$app_pid" 2>/dev/null || true
# The bus starts xfconfd (the tray shot's panel settings) on demand, which reads them from here.
mkdir -p "$data/xdg/xfce4/xfconf/xfce-perchannel-xml"
cp scripts/screenshot-panel.xml "$data/xdg/xfce4/xfconf/xfce-perchannel-xml/xfce4-panel.xml"
XDG_CONFIG_HOME="$data/xdg" dbus-daemon --session --nofork --print-address=1 >"$data/bus-address" &
pids+=($!)
for _ in $(seq 50); do [ -s "$data/bus-address" ] && break; sleep 0.1; done
DBUS_SESSION_BUS_ADDRESS="$(head -n1 "$data/bus-address")"
export DBUS_SESSION_BUS_ADDRESS
# Notifications stay until closed, so the screenshot finds the one the app sends.
printf '[global]\nfont = "DejaVu Sans 11"\n\n[urgency_normal]\ntimeout = 0\n' >"$data/dunstrc"
dunst -config "$data/dunstrc" >/dev/null 2>&1 &
pids+=($!)
"$binary" "${fleet[@]}" 2>"$data/fleet.log" &
app_pid=$!
pids+=("$app_pid")
for _ in $(seq 300); do [ -s "$data/fleet/costs-snapshot.jsonl" ] && break; sleep 0.1; done
kill "$app_pid"; wait "$app_pid" 2>/dev/null || true
scripts/kafka.sh stop "$data/kafka" >/dev/null
"$binary" "${fleet[@]}" 2>>"$data/fleet.log" &
app_pid=$!
pids+=("$app_pid")
for _ in $(seq 100); do xdotool search --name '^usagebill$' >/dev/null 2>&1 && break; sleep 0.1; done
window="$(xdotool search --name '^usagebill$' | head -n1)"
xdotool windowmove "$window" 0 0 windowsize "$window" "$width" "$height"
sleep 2
click 150 16 15 && shoot offline
# The outage notification, once the brokers have been out of reach for outage_after (30 s, so the
# offline shot above is taken before it) with windows waiting.
for _ in $(seq 120); do [ "$(dunstctl count displayed 2>/dev/null || echo 0)" -gt 0 ] && break; sleep 0.5; done
shoot notification

# The tray menu: xfce4-panel along the top of the screen (its status tray hosts StatusNotifierItems
# on the private bus), the app opened again so that its icon finds the panel, and the icon
# right-clicked. The panel ends in the tray, so the app's icon is its last one.
dunstctl close-all 2>/dev/null || true
kill "$app_pid"; wait "$app_pid" 2>/dev/null || true
# No window manager runs here: without --disable-wm-check the panel waits for one.
XDG_CONFIG_HOME="$data/xdg" xfce4-panel --disable-wm-check >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 300); do dbus-send --session --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.ListNames 2>/dev/null | grep -q StatusNotifierWatcher && break; sleep 0.1; done
"$binary" "${fleet[@]}" 2>>"$data/fleet.log" &
app_pid=$!
pids+=("$app_pid")
for _ in $(seq 100); do xdotool search --name '^usagebill$' >/dev/null 2>&1 && break; sleep 0.1; done
window="$(xdotool search --name '^usagebill$' | head -n1)"
xdotool windowmove "$window" 0 28 windowsize "$window" "$width" "$((height - 28))"
sleep 3
xdotool mousemove $((width - 14)) 14 click 3
# Onto the menu's first item, so that the icon's tooltip (the outbox count) does not cover the menu.
sleep 1
xdotool mousemove $((width - 60)) 42
sleep 1.5
shoot tray

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
