#!/usr/bin/env bash
# The HTTP contract from a generated client's side: schemathesis (pinned in
# requirements-dev.txt, in the project venv) reads docs/openapi.yaml from the dev server it
# starts here (debug build, free loopback port, fresh seeded data, temporary outbox) and sends
# it requests made from the document, with every check, a fixed seed and a fixed number of
# examples per operation (tests/contract/schemathesis.toml says which checks and why; no
# `--checks` on the command line, which would override its per-operation settings). Any finding fails the stage, and so
# does a tool that cannot be installed or a server that does not start.
#
#   scripts/schemathesis.sh                      # as CI runs it
#   SCHEMATHESIS_SEED=7 scripts/schemathesis.sh  # another seed (extra args go to `st run`)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
fail() {
    printf '\nschemathesis.sh: FAILED: %s\n' "$*" >&2
    exit 1
}

# shellcheck source=SCRIPTDIR/lib.sh
source "$root/scripts/lib.sh"
ensure_venv || fail "scripts/venv.sh could not install the pinned tools"
st="$root/.venv/bin/st"
[[ -x "$st" ]] || fail "no schemathesis at $st (requirements-dev.txt pins it)"
echo "==> schemathesis.sh: $("$st" --version)" >&2

echo "==> schemathesis.sh: cargo build -p devserver" >&2
cargo build -p devserver || fail "cargo build -p devserver"
bin="${CARGO_TARGET_DIR:-$root/target}/debug/devserver"
[[ -x "$bin" ]] || fail "no dev server binary at $bin"

work="$(mktemp -d "${TMPDIR:-/tmp}/teleperson-schemathesis-XXXXXX")"
server_pid=""
cleanup() {
    local status=$?
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ $status -ne 0 && -s "$work/server.log" ]]; then
        echo "schemathesis.sh: the dev server's log:" >&2
        tail -n 50 "$work/server.log" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Port 0: the server picks a free port and prints it.
RUST_LOG="${RUST_LOG:-warn}" "$bin" --addr 127.0.0.1 --port 0 --outbox "$work/outbox" \
    --no-simulate-delivery >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
url=""
deadline=$((SECONDS + 60))
until url="$(grep -o -m1 'Listening on http://127\.0\.0\.1:[0-9]*' "$work/server.out" 2>/dev/null | cut -d' ' -f3)" && [[ -n "$url" ]]; do
    kill -0 "$server_pid" 2>/dev/null || fail "the dev server exited at start (log: above)"
    ((SECONDS < deadline)) || fail "the dev server did not print its address within 60 s"
    sleep 0.2
done
echo "==> schemathesis.sh: dev server at $url (pid $server_pid)" >&2

# The owner's access token (the first identity), as the page gets it.
token="$(curl -fsS "$url/dev/identities" | "$root/.venv/bin/python" -c '
import json, sys
items = json.load(sys.stdin)["items"]
owner = next(i for i in items if i["role"] == "owner")
print(owner["access_token"])')" || fail "no access token from $url/dev/identities"

seed="${SCHEMATHESIS_SEED:-20261125}"
echo "==> schemathesis.sh: st run (seed $seed, config tests/contract/schemathesis.toml)" >&2
status=0
"$st" --config-file "$root/tests/contract/schemathesis.toml" run "$url/openapi.yaml" \
    --url "$url" \
    --header "Authorization: Bearer $token" \
    --seed "$seed" \
    --report junit --report-dir "$work/report" \
    "$@" || status=$?
((status == 0)) || fail "schemathesis found problems (exit $status): the findings are listed above"
echo "==> schemathesis.sh: no findings" >&2
