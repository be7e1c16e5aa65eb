#!/usr/bin/env bash
# Create (once) the project's Python venv at .venv and install the pinned dev tools from
# requirements-dev.txt (moto server, boto3, cfn-lint, cargo-lambda, schemathesis). Idempotent: pip runs
# only when requirements-dev.txt changed since the last successful install (stamp file).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib.sh
source "$root/scripts/lib.sh"

for tool in python3 curl; do
    if ! command -v "$tool" >/dev/null; then
        echo "venv.sh: $tool is not installed; the test scripts need it (Debian: apt-get install ${tool/python3/python3 python3-venv})" >&2
        exit 1
    fi
done
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "venv.sh: python3 has no venv/ensurepip module (Debian: apt-get install python3-venv)" >&2
    exit 1
fi
sync_venv venv.sh "$root/.venv" "$root/requirements-dev.txt" "$root/.venv/.requirements-dev.sha256"
