#!/usr/bin/env bash
# Installs usagebill for the current user, so it opens by double-click from the desktop's menu:
# the binary into ~/.local/bin, the desktop entry and the icons under $XDG_DATA_HOME (default
# ~/.local/share). No root needed. `--uninstall` removes what it installed.
#
#   scripts/install-desktop.sh [BINARY]      (default: target/release/usagebill)
#   scripts/install-desktop.sh --uninstall
set -euo pipefail
repo="$(realpath "$(dirname "$0")/..")"

data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
bin_dir="${USAGEBILL_BIN_DIR:-$HOME/.local/bin}"
desktop="$data_home/applications/usagebill.desktop"
icon_png="$data_home/icons/hicolor/256x256/apps/usagebill.png"
icon_svg="$data_home/icons/hicolor/scalable/apps/usagebill.svg"

refresh_caches() {
    # Menus pick the entry up by themselves; these only make it quicker. Missing tools are fine.
    command -v update-desktop-database >/dev/null && update-desktop-database -q "$data_home/applications" || true
    command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$data_home/icons/hicolor" 2>/dev/null || true
}

if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$bin_dir/usagebill" "$desktop" "$icon_png" "$icon_svg"
    refresh_caches
    echo "removed usagebill from $bin_dir and $data_home"
    exit 0
fi

binary="$(realpath -m "${1:-$repo/target/release/usagebill}")"
cd "$repo"
[ -x "$binary" ] || { echo "install-desktop.sh: no executable at $binary (build it first: cargo build --release)" >&2; exit 2; }

install -Dm755 "$binary" "$bin_dir/usagebill"
install -Dm644 assets/usagebill.png "$icon_png"
install -Dm644 assets/usagebill.svg "$icon_svg"
mkdir -p "$(dirname "$desktop")"
# The entry names the binary by its full path: ~/.local/bin is not on every desktop session's PATH.
sed "s|^Exec=usagebill$|Exec=$bin_dir/usagebill|" assets/usagebill.desktop >"$desktop"
chmod 644 "$desktop"
refresh_caches
echo "installed $bin_dir/usagebill and $desktop"
