#!/usr/bin/env bash
# Lints docs/openapi.yaml with the Redocly CLI (pinned in tools/openapi-lint/package-lock.json,
# installed with `npm ci` into the git-ignored tools/openapi-lint/node_modules), with the
# recommended rules as errors (tools/openapi-lint/redocly.yaml). Fails loudly when Node, npm or
# the CLI is missing or cannot be installed, and on any problem the lint reports.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/tools/openapi-lint"
fail() {
    printf '\nopenapi-lint.sh: FAILED: %s\n' "$*" >&2
    exit 1
}

command -v node >/dev/null || fail "node is not installed (Node.js 20.19 or newer is needed)"
command -v npm >/dev/null || fail "npm is not installed"
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' ||
    fail "Node.js $(node --version) is too old: 20.19 or newer is needed"

# npm ci only when the lock changed since the last successful install (stamp file).
stamp="$dir/node_modules/.package-lock.sha256"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [[ ! -x "$dir/node_modules/.bin/redocly" || "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    echo "==> openapi-lint.sh: npm ci (tools/openapi-lint)" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in tools/openapi-lint"
    echo "$want" >"$stamp"
fi
[[ -x "$dir/node_modules/.bin/redocly" ]] || fail "the Redocly CLI is not in tools/openapi-lint/node_modules"

export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1
echo "==> openapi-lint.sh: redocly $("$dir/node_modules/.bin/redocly" --version) lint docs/openapi.yaml" >&2
"$dir/node_modules/.bin/redocly" lint --config "$dir/redocly.yaml" "$root/docs/openapi.yaml" ||
    fail "docs/openapi.yaml does not lint clean (see above)"
