#!/usr/bin/env bash
# Browser tests of the reference Users tab page: Debian's Chromium (headless) driven by the
# pinned playwright-core, against the dev server's debug binary (each test starts its own on a
# free loopback port with a temporary outbox). Screenshots go to tests/e2e/screenshots/.
#
#   scripts/e2e.sh                                  # everything
#   scripts/e2e.sh --test-name-pattern keyboard     # extra args go to `node --test`
#
# Installs what is missing (Chromium via apt-get, node modules via `npm ci`), builds the dev
# server, runs the tests, and exits non-zero with a message when anything fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
fail() {
    printf '\ne2e.sh: FAILED: %s\n' "$*" >&2
    exit 1
}

# 1. Chromium (Debian package; Playwright's own browser downloads are not used).
chromium_bin="${CHROMIUM_BIN:-/usr/bin/chromium}"
if [[ ! -x "$chromium_bin" ]]; then
    echo "==> e2e.sh: $chromium_bin is missing: installing the Debian chromium package" >&2
    sudo=""
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null || fail "chromium is missing and this is not root (no sudo): apt-get install -y chromium"
        sudo="sudo -n"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq || fail "apt-get update"
    $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null || fail "apt-get install -y chromium"
    [[ -x "$chromium_bin" ]] || fail "chromium installed, but $chromium_bin does not exist"
fi
export CHROMIUM_BIN="$chromium_bin"
echo "==> e2e.sh: $("$chromium_bin" --version 2>/dev/null | head -n 1)" >&2

# 2. Node and the pinned playwright-core (package-lock.json).
command -v node >/dev/null || fail "node is not installed (Node.js 20 or newer is needed)"
command -v npm >/dev/null || fail "npm is not installed"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
((node_major >= 20)) || fail "Node.js $(node --version) is too old: 20 or newer is needed"
echo "==> e2e.sh: npm ci (tests/e2e)" >&2
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in tests/e2e"

# 3. The dev server (debug build).
echo "==> e2e.sh: cargo build -p devserver" >&2
cargo build -p devserver || fail "cargo build -p devserver"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
export DEVSERVER_BIN="$target_dir/debug/devserver"
[[ -x "$DEVSERVER_BIN" ]] || fail "no dev server binary at $DEVSERVER_BIN"

# 4. The tests (node's own runner prints the summary: tests / pass / fail).
echo "==> e2e.sh: node --test (screenshots in tests/e2e/screenshots/)" >&2
cd tests/e2e
status=0
node --test --test-concurrency=1 --test-reporter=spec "$@" users-tab.test.mjs audit.test.mjs || status=$?
if [[ $status -ne 0 ]]; then
    fail "browser tests failed (exit $status); screenshots so far are in tests/e2e/screenshots/"
fi
echo "==> e2e.sh: all browser tests passed" >&2
