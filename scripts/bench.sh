#!/usr/bin/env bash
# THE benchmark command. Starts the AWS emulator (moto server, pinned in
# requirements-dev.txt) on a free loopback port, builds the function binaries, the baseline
# (bench-hello) and the bench in release, runs every benchmark and writes the table into
# docs/BENCHMARKS.md.
#
#   scripts/bench.sh                      # bench all --write-docs (release; ~11 min build from clean)
#   scripts/bench.sh cold-start --runs 5  # other arguments go to the bench binary instead
#   BENCH_PROFILE=debug scripts/bench.sh all --quick   # smoke run on debug builds
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

"$root/scripts/venv.sh"

# ---------------------------------------------------------------------------------------------
# The emulator: moto server on a free loopback port, stopped on exit whatever happens.
# ---------------------------------------------------------------------------------------------
mkdir -p "$root/.tmp"
port="$("$root/.venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
moto_log="$root/.tmp/moto-bench-$port.log"
"$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 &
moto_pid=$!
cleanup() {
    if kill -0 "$moto_pid" 2>/dev/null; then
        kill "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

endpoint="http://127.0.0.1:$port"
deadline=$((SECONDS + 30))
until curl -s -o /dev/null "$endpoint/moto-api/data.json"; do
    if ! kill -0 "$moto_pid" 2>/dev/null || ((SECONDS >= deadline)); then
        echo "bench.sh: moto server did not answer at $endpoint within 30 s; its log ($moto_log):" >&2
        cat "$moto_log" >&2
        exit 1
    fi
    sleep 0.2
done
echo "bench.sh: moto server up at $endpoint (pid $moto_pid, log $moto_log)" >&2

export AWS_ENDPOINT_URL="$endpoint"
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
# Lets the cascade benchmark report how busy the emulator was (it is the bottleneck there).
export BENCH_EMULATOR_PID="$moto_pid"
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_SESV2 \
    AWS_ENDPOINT_URL_SQS AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER

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
