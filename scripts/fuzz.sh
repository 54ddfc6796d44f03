#!/usr/bin/env bash
# The fuzzing campaign: every target of every fuzz workspace, each for a
# while, on the stable toolchain (cargo-fuzz: libFuzzer with
# AddressSanitizer; RUSTC_BOOTSTRAP=1 lets stable rustc take its -Z flags).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET [RUNS_PER_TARGET]]
#
# Each target runs for SECONDS (default 150; the test command runs 5), or
# until it has executed RUNS inputs if that comes first (a campaign: e.g.
# `scripts/fuzz.sh 1800 10000000`). P2PNET_FUZZ_SANITIZER=none builds every
# workspace without AddressSanitizer, about 2.5 times the executions a
# second for the crypto-bound targets.
#
# Each target starts from its committed seeds (fuzz/seeds/TARGET) and the
# corpus earlier runs grew (fuzz/corpus/TARGET, not committed). Prints one
# row per target: executions, seconds, executions a second, and whether it
# crashed (the input is then in fuzz/artifacts/TARGET). Exits 1 on a crash.
set -euo pipefail
# One function, read whole before it runs: editing the file during a
# long campaign cannot change what the running copy does.
main() {
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
seconds=${1:-150}
runs=${2:-0}
[[ "$seconds" =~ ^[0-9]+$ && "$runs" =~ ^[0-9]+$ ]] \
  || { echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET [RUNS_PER_TARGET]]" >&2; exit 2; }
run_limit=()
[ "$runs" -gt 0 ] && run_limit=(-runs="$runs")

if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1
# No backtrace captured for every error value: sequoia's errors are
# anyhow errors, which capture one whenever RUST_BACKTRACE is set (as it
# is on many CI machines), and that capture was 80% of check_task's time
# (1,400 executions a second against 13,000 without). Panics still print
# theirs.
export RUST_LIB_BACKTRACE=0

# Crates with a `fuzz/` workspace of their own, each with its sanitizer:
# AddressSanitizer where a target reaches unsafe code or C (the crypto, the
# decoders' buffers); none for the server, whose targets are safe Rust
# parsers hunted for panics, and whose stack under ASan builds for long.
workspaces=(crates/p2pnet-proto:address crates/p2pnet-bootstrap:address crates/widescan:address server:none)
# P2PNET_FUZZ_WORKSPACES="crates/widescan server" runs only those (two
# campaigns side by side on two cores), P2PNET_FUZZ_TARGETS="check_task"
# only those targets.
if [ -n "${P2PNET_FUZZ_WORKSPACES:-}" ]; then
  chosen=()
  for entry in "${workspaces[@]}"; do
    [[ " $P2PNET_FUZZ_WORKSPACES " == *" ${entry%%:*} "* ]] && chosen+=("$entry")
  done
  workspaces=("${chosen[@]}")
fi

# One target directory per sanitizer, shared by the workspaces: they build
# many of the same crates with the same flags (p2pnet-proto, the crypto,
# tokio, serde and every proc macro), which four directories would build
# and store four times, gigabytes of disk (CI once ran out of it here).
target_root=${CARGO_TARGET_DIR:-$PWD/target}/fuzz

rows=()
crashed=0
for entry in "${workspaces[@]}"; do
  workspace=${entry%%:*}
  sanitizer=${P2PNET_FUZZ_SANITIZER:-${entry##*:}}
  target_dir=$target_root/$sanitizer
  (cd "$workspace" && cargo fuzz build -s "$sanitizer" --target-dir "$target_dir")
  for target in $(cd "$workspace" && cargo fuzz list); do
    [[ -z "${P2PNET_FUZZ_TARGETS:-}" || " $P2PNET_FUZZ_TARGETS " == *" $target "* ]] || continue
    inputs=("fuzz/corpus/$target")
    mkdir -p "$workspace/fuzz/corpus/$target"
    [[ -d "$workspace/fuzz/seeds/$target" ]] && inputs+=("fuzz/seeds/$target")
    log=$(mktemp)
    outcome=ok
    # Leak detection is off: LeakSanitizer stops the process with ptrace at
    # exit, which some CI sandboxes forbid, and a leak is not what these
    # targets hunt (crashes, panics, overflows, out-of-bounds reads).
    if ! (cd "$workspace" && cargo fuzz run -s "$sanitizer" --target-dir "$target_dir" "$target" "${inputs[@]}" -- \
        -max_total_time="$seconds" "${run_limit[@]}" -print_final_stats=1 -detect_leaks=0) >"$log" 2>&1; then
      outcome="CRASH (see $workspace/fuzz/artifacts/$target)"
      crashed=1
      tail -40 "$log" >&2
    fi
    # A crashed run prints no "Done" line: the figures may be missing.
    executed=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
    took=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | grep -oE 'in [0-9]+' | grep -oE '[0-9]+' | tail -1 || true)
    executed=${executed:-0}
    took=${took:-$seconds}
    rate=$(( executed / (took > 0 ? took : 1) ))
    rows+=("$(printf '| %-22s | %-9s | %12s | %7s | %9s | %s |' "$target" "$sanitizer" "$executed" "$took" "$rate" "$outcome")")
    rm -f "$log"
  done
done

printf '\n| %-22s | %-9s | %12s | %7s | %9s | %s |\n' target sanitizer executions seconds "exec/s" outcome
printf '|%s|%s|%s|%s|%s|%s|\n' "------------------------" "-----------" "--------------" "---------" "-----------" "---------"
printf '%s\n' "${rows[@]}"
exit "$crashed"
}
main "$@"
