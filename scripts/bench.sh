#!/usr/bin/env bash
# THE benchmark command. Starts the AWS emulator (scripts/emulator.py: moto server, pinned in
# requirements-dev.txt, plus SESv2's suppression list) and dynalite (tests/dynalite, npm) on
# free loopback ports, builds the function binaries, the baseline (bench-hello) and the bench
# in release, runs every benchmark and writes the table into docs/BENCHMARKS.md.
#
#   scripts/bench.sh                      # bench all --write-docs (release; ~11 min build from clean)
#   scripts/bench.sh cold-start --runs 5  # other arguments go to the bench binary instead
#   BENCH_PROFILE=debug scripts/bench.sh all --quick   # smoke run on debug builds
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# shellcheck source=SCRIPTDIR/lib.sh
source "$root/scripts/lib.sh"
ensure_venv

# ---------------------------------------------------------------------------------------------
# The emulator: scripts/emulator.py (moto server with SESv2's suppression list) on a free
# loopback port, stopped on exit whatever happens; its log is kept.
# ---------------------------------------------------------------------------------------------
start_emulator bench.sh moto-bench --keep-log
use_emulator
# Lets the cascade benchmark report how busy the emulator was (it is the bottleneck there).
export BENCH_EMULATOR_PID="$emulator_pid"
# The cascade benchmark keeps the user-data tables in dynalite (tests/dynalite, the second
# DynamoDB of the tests): moto answers an index query by walking the whole table, and with
# five partitions written at capacity it, not the capacity model, would set the pace.
start_dynalite bench.sh || exit 1
export DYNALITE_ENDPOINT="$dynalite_endpoint" BENCH_DYNALITE_PID="$dynalite_pid"

# ---------------------------------------------------------------------------------------------
# Build: the four functions, the baseline and the bench, with one profile (release by default).
# ---------------------------------------------------------------------------------------------
profile="${BENCH_PROFILE:-release}"
packages=(-p message-user -p delete-user -p list-users -p deletion-worker -p bench-hello -p bench)
start=$SECONDS
if [[ "$profile" == "release" ]]; then
    cargo build --release "${packages[@]}"
    bin_dir="$root/target/release"
else
    cargo build "${packages[@]}"
    bin_dir="$root/target/debug"
fi
echo "bench.sh: $profile build done in $((SECONDS - start)) s" >&2

# ---------------------------------------------------------------------------------------------
# Run. The bench takes the function binaries from its own directory (--no-build): the ones
# just built.
# ---------------------------------------------------------------------------------------------
args=("$@")
if [[ ${#args[@]} -eq 0 ]]; then args=(all --write-docs); fi
"$bin_dir/bench" "${args[@]}" --no-build
