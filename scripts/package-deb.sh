#!/usr/bin/env bash
# Builds a Debian package of usagebill with dpkg-deb from a binary that is already built: the
# binary, the desktop entry and icons (double-click to open), the systemd units and the docs.
#
#   scripts/package-deb.sh [BINARY] [OUT_DIR]
#
# BINARY defaults to target/release/usagebill (CI passes the debug one); OUT_DIR to target/debian.
# The packaged copy of the binary is stripped (symbols and debug info), as Debian policy asks.
# DEB_COMPRESSION (xz, gzip, zstd, none; default xz) picks dpkg-deb's compressor; DEB_MAINTAINER
# the Maintainer field. Prints the path of the .deb.
set -euo pipefail
repo="$(realpath "$(dirname "$0")/..")"
# Paths given are relative to the caller's directory; the defaults to the repository.
binary="$(realpath -m "${1:-$repo/target/release/usagebill}")"
out_dir="$(realpath -m "${2:-$repo/target/debian}")"
cd "$repo"
compression="${DEB_COMPRESSION:-xz}"
# The project has no mail host of its own; a packager names themselves in DEB_MAINTAINER.
maintainer="${DEB_MAINTAINER:-usagebill developers <usagebill@users.noreply.github.com>}"
[ -x "$binary" ] || { echo "package-deb.sh: no executable at $binary (build it first: cargo build --release)" >&2; exit 2; }

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
arch="$(dpkg --print-architecture)"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT

install -Dm755 "$binary" "$root/usr/bin/usagebill"
if command -v strip >/dev/null; then strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/usagebill"; fi
install -Dm644 assets/usagebill.desktop "$root/usr/share/applications/usagebill.desktop"
install -Dm644 assets/usagebill.png "$root/usr/share/icons/hicolor/256x256/apps/usagebill.png"
install -Dm644 assets/usagebill.svg "$root/usr/share/icons/hicolor/scalable/apps/usagebill.svg"
install -Dm644 assets/usagebill-agent.service "$root/lib/systemd/system/usagebill-agent.service"
install -Dm644 assets/usagebill-worker.service "$root/lib/systemd/system/usagebill-worker.service"
install -Dm644 assets/rate-card.toml "$root/usr/share/usagebill/rate-card.toml"
install -Dm644 config.example.toml "$root/usr/share/doc/usagebill/config.example.toml"
install -Dm644 README.md "$root/usr/share/doc/usagebill/README.md"
# Debian policy: a machine-readable copyright file and a compressed changelog in the doc dir.
cat >"$root/usr/share/doc/usagebill/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: usagebill
Source: https://crates.io/crates/usagebill

Files: *
Copyright: $(date -u +%Y) the usagebill developers
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
COPYRIGHT
printf '%s\n' "usagebill ($version) unstable; urgency=medium" "" \
    "  * Built from the usagebill sources, version $version." "" \
    " -- $maintainer  $(date -u -R)" | gzip -9n >"$root/usr/share/doc/usagebill/changelog.gz"

# Runtime libraries the binary links, by the Debian package that ships each one here (merged /usr
# means dpkg may know a library under /lib or /usr/lib, so both are asked).
package_of() {
    local path
    for path in "$1" "/usr$1" "${1#/usr}" "$(realpath "$1")"; do
        dpkg -S "$path" 2>/dev/null | head -n1 | cut -d: -f1 && return 0
    done
    echo "package-deb.sh: no Debian package ships $1; leaving it out of Depends" >&2
}
depends="$(ldd "$root/usr/bin/usagebill" | awk '/=> \//{print $3}' | while read -r library; do package_of "$library"; done \
    | sort -u | paste -sd, - | sed 's/,/, /g')"
installed_kib="$(du -sk "$root" | cut -f1)"
mkdir -p "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<CONTROL
Package: usagebill
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_kib
Depends: ${depends:-libc6}
Recommends: libgl1, libegl1, libxkbcommon-x11-0
Section: admin
Priority: optional
Description: meters what each machine uses and bills it, live
 A desktop app (or a headless agent) samples the machine's CPU, memory, disk
 and network every second and sends the usage over Apache Kafka to billing
 workers, which price it with a versioned rate card into a SQLite ledger.
 With no broker configured the whole chain runs on one machine.
CONTROL

mkdir -p "$out_dir"
deb="$out_dir/usagebill_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"$compression" --build "$root" "$deb" >/dev/null
echo "$deb"
