# shellcheck shell=bash
# What the scripts share, sourced (never run) by scripts/test.sh, bench.sh, check-infra.sh,
# lambda-invoke.sh, schemathesis.sh and venv.sh:
#
#   ensure_venv                 the project venv .venv with the pinned tools (scripts/venv.sh)
#   sync_venv WHO VENV REQ STAMP [NOTE]
#                               creates a Python venv once, installs REQ when it changed
#   free_port                   prints a free loopback TCP port
#   on_exit FUNCTION            calls FUNCTION (with the script's exit status as $1) when the
#                               script exits, whatever happens; INT/TERM exit with 130
#   emulator_answers URL        whether our emulator answers at URL (GET /moto-api/emulator/ses-messages)
#   start_emulator WHO STEM     the AWS emulator (scripts/emulator.py: moto server plus SESv2's
#                               suppression list) on a free loopback port, stopped on exit
#   use_emulator                points the AWS SDK at it (AWS_ENDPOINT_URL, test credentials)
#   start_dynalite WHO          dynalite (tests/dynalite, npm ci), the second DynamoDB, on a
#                               free loopback port, stopped on exit; stop_dynalite stops it
#
# The sourcing script keeps `set -euo pipefail`; this file sets no options.

lib_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ensure_venv() {
    "$lib_root/scripts/venv.sh"
}

# sync_venv WHO VENV REQ STAMP [NOTE]: creates the Python venv VENV (once) and installs the
# requirements file REQ into it whenever REQ changed since the last successful install (its
# sha256 is kept in the file STAMP). Messages start with "WHO:"; NOTE ends the install message.
sync_venv() {
    local who="$1" venv="$2" req="$3" stamp="$4" note="${5:+ $5}" want have
    if [[ ! -x "$venv/bin/python" ]]; then
        echo "$who: creating $venv" >&2
        python3 -m venv "$venv"
    fi
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    have="$(cat "$stamp" 2>/dev/null || true)"
    if [[ "$want" != "$have" ]]; then
        echo "$who: installing $(basename "$req") into $venv$note" >&2
        "$venv/bin/pip" install --disable-pip-version-check --quiet -r "$req"
        echo "$want" >"$stamp"
    fi
}

free_port() {
    "$lib_root/.venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------------------------------------
# Exit hooks: one EXIT trap that calls every registered function, the last registered first.
# ---------------------------------------------------------------------------------------------
lib_exit_hooks=()
lib_run_exit_hooks() {
    local status=$? i
    for ((i = ${#lib_exit_hooks[@]} - 1; i >= 0; i--)); do
        "${lib_exit_hooks[i]}" "$status" || true
    done
}
on_exit() {
    if [[ ${#lib_exit_hooks[@]} -eq 0 ]]; then
        trap lib_run_exit_hooks EXIT
        trap 'exit 130' INT TERM
    fi
    lib_exit_hooks+=("$1")
}

# ---------------------------------------------------------------------------------------------
# The emulator.
# ---------------------------------------------------------------------------------------------
# The cheapest read of scripts/emulator.py's own (a plain moto server answers it with 404, and
# /moto-api/data.json, which builds a document of everything moto holds, takes seconds late in
# a test run and holds up every other request meanwhile).
emulator_answers() {
    curl -sf -o /dev/null "$1/moto-api/emulator/ses-messages"
}

# start_emulator WHO STEM [--keep-log]: starts scripts/emulator.py on a free loopback port with
# its log in .tmp/STEM-<port>.log and waits (30 s at most) until it answers; messages start with
# "WHO:". Sets emulator_pid, emulator_endpoint, emulator_log. On exit the emulator is stopped;
# its log is removed when the script succeeded and kept (and named) when it failed, or always
# kept with --keep-log. If it does not come up: its log on stderr, exit 1.
emulator_pid=""
emulator_endpoint=""
emulator_log=""
emulator_who=""
emulator_keep_log=0
start_emulator() {
    emulator_who="$1"
    local stem="$2" port
    emulator_keep_log=0
    if [[ "${3:-}" == --keep-log ]]; then emulator_keep_log=1; fi
    mkdir -p "$lib_root/.tmp"
    port="$(free_port)"
    emulator_log="$lib_root/.tmp/$stem-$port.log"
    "$lib_root/.venv/bin/python" "$lib_root/scripts/emulator.py" -H 127.0.0.1 -p "$port" >"$emulator_log" 2>&1 &
    emulator_pid=$!
    on_exit stop_emulator
    emulator_endpoint="http://127.0.0.1:$port"
    local deadline=$((SECONDS + 30))
    until emulator_answers "$emulator_endpoint"; do
        if ! kill -0 "$emulator_pid" 2>/dev/null || ((SECONDS >= deadline)); then
            echo "$emulator_who: moto server did not answer at $emulator_endpoint within 30 s; its log ($emulator_log):" >&2
            cat "$emulator_log" >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "$emulator_who: moto server up at $emulator_endpoint (pid $emulator_pid, log $emulator_log)" >&2
}

# stop_emulator [STATUS]: the exit hook of start_emulator (STATUS: the script's exit status).
stop_emulator() {
    local status="${1:-0}"
    if [[ -n "$emulator_pid" ]] && kill -0 "$emulator_pid" 2>/dev/null; then
        kill "$emulator_pid" 2>/dev/null || true
        wait "$emulator_pid" 2>/dev/null || true
    fi
    emulator_pid=""
    if [[ $emulator_keep_log -eq 1 || -z "$emulator_log" ]]; then return 0; fi
    # The emulator's log is kept only when something failed.
    if [[ $status -eq 0 ]]; then
        rm -f "$emulator_log"
    else
        echo "$emulator_who: moto server log kept at $emulator_log" >&2
    fi
}

# use_emulator: the AWS SDK talks to the emulator started above, with test credentials, and
# never to a developer's own AWS profile or a real endpoint.
use_emulator() {
    export AWS_ENDPOINT_URL="$emulator_endpoint"
    export AWS_ACCESS_KEY_ID=test
    export AWS_SECRET_ACCESS_KEY=test
    export AWS_REGION=us-east-1
    export AWS_DEFAULT_REGION=us-east-1
    unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_SESV2 \
        AWS_ENDPOINT_URL_SQS AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER
}

# ---------------------------------------------------------------------------------------------
# dynalite: a second, independent DynamoDB (npm, pinned in tests/dynalite/package-lock.json).
# ---------------------------------------------------------------------------------------------
# start_dynalite WHO: installs it (npm ci, which also applies tests/dynalite/patch-dynalite.js),
# starts it on a free loopback port with its log in .tmp/dynalite-<port>.log and waits (15 s at
# most) until it answers; messages start with "WHO:". Sets dynalite_pid, dynalite_endpoint,
# dynalite_log; stopped on exit (or by stop_dynalite). Returns 1, with the reason on stderr,
# when node or npm is missing or dynalite does not come up.
dynalite_pid=""
dynalite_endpoint=""
dynalite_log=""
dynalite_hooked=0
start_dynalite() {
    local who="$1" dir="$lib_root/tests/dynalite" bin port code deadline
    command -v node >/dev/null || { echo "$who: dynalite: node is not installed (Node.js 20 or newer runs dynalite)" >&2; return 1; }
    command -v npm >/dev/null || { echo "$who: dynalite: npm is not installed" >&2; return 1; }
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) ||
        { echo "$who: dynalite: npm ci in tests/dynalite failed" >&2; return 1; }
    bin="$dir/node_modules/.bin/dynalite"
    [[ -x "$bin" ]] || { echo "$who: dynalite: npm ci left no $bin" >&2; return 1; }
    mkdir -p "$lib_root/.tmp"
    port="$(free_port)"
    dynalite_log="$lib_root/.tmp/dynalite-$port.log"
    node "$bin" --host 127.0.0.1 --port "$port" --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 \
        >"$dynalite_log" 2>&1 &
    dynalite_pid=$!
    if [[ $dynalite_hooked -eq 0 ]]; then
        on_exit stop_dynalite
        dynalite_hooked=1
    fi
    dynalite_endpoint="http://127.0.0.1:$port"
    deadline=$((SECONDS + 15))
    while :; do
        # Any HTTP answer will do (dynalite refuses an unsigned request with a 400).
        code="$(curl -s -o /dev/null -w '%{http_code}' -X POST "$dynalite_endpoint/" || true)"
        [[ "$code" =~ ^[1-5][0-9][0-9]$ ]] && break
        if ! kill -0 "$dynalite_pid" 2>/dev/null || ((SECONDS >= deadline)); then
            cat "$dynalite_log" >&2
            stop_dynalite
            echo "$who: dynalite did not come up at $dynalite_endpoint (it exited, or gave no answer within 15 s; its log is above)" >&2
            return 1
        fi
        sleep 0.2
    done
    echo "$who: dynalite up at $dynalite_endpoint (pid $dynalite_pid, log $dynalite_log)" >&2
}

# stop_dynalite: stops the dynalite start_dynalite started, if it runs (also its exit hook).
stop_dynalite() {
    if [[ -n "$dynalite_pid" ]] && kill -0 "$dynalite_pid" 2>/dev/null; then
        kill "$dynalite_pid" 2>/dev/null || true
        wait "$dynalite_pid" 2>/dev/null || true
    fi
    dynalite_pid=""
}
