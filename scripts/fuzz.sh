#!/usr/bin/env bash
# Fuzzes the usage-record parser with cargo-fuzz (libFuzzer) for a bounded time. An optional job,
# not part of CI: ./scripts/fuzz.sh [SECONDS] [TARGET] [-- LIBFUZZER-ARGS...]
#   SECONDS  how long to fuzz (default 60; -max_total_time)
#   TARGET   a target in fuzz/fuzz_targets (default record_parse)
#
# cargo-fuzz expects a nightly compiler (it passes -Z flags, e.g. -Zsanitizer). Only a stable
# toolchain may be installed, so RUSTC_BOOTSTRAP=1 lets stable rustc and cargo accept them. That is an escape hatch
# meant for building the compiler itself: fine for a local fuzzing run, not for release builds.
# With a nightly toolchain installed, `cargo +nightly fuzz run …` works without it.
#
# --sanitizer none: cargo-fuzz defaults to AddressSanitizer, which it also passes to the C code
# usagebill links (zstd, librdkafka), whose configure step then fails to link its own test
# programs. The code under test is safe Rust, where ASan finds nothing the Rust checks do not, so
# the run does without it; libFuzzer's coverage guidance is the same either way.
#
# The fuzz crate is fuzz/, outside the main build (its own [workspace], its own target dir). New
# interesting inputs go to fuzz/corpus/TARGET and crashes to fuzz/artifacts/TARGET (both ignored by
# git); the committed seeds in fuzz/seeds/TARGET are read, never written. To replay a crash:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none TARGET artifacts/TARGET/crash-… (from fuzz/)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
target="${2:-record_parse}"
shift $(($# > 2 ? 2 : $#))
[ "${1:-}" = "--" ] && shift

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (cargo install cargo-fuzz)"
    cargo install cargo-fuzz
fi
# libFuzzer is C++, built by libfuzzer-sys.
command -v c++ >/dev/null || { source ../scripts/deps.sh && install_debian_packages g++; }

mkdir -p "corpus/$target" "artifacts/$target"
seeds=()
[ -d "seeds/$target" ] && seeds+=("seeds/$target")
dict=()
[ "$target" = record_parse ] && dict+=(-dict=record.dict)

# -max_total_time bounds the run; libFuzzer prints its final "Done N runs in S second(s)" line and
# exits 0 when no input crashed, non-zero (with the input saved under artifacts/) when one did.
RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none "$target" "corpus/$target" "${seeds[@]}" -- \
    -max_total_time="$seconds" -print_final_stats=1 "${dict[@]}" "$@"
