#!/usr/bin/env bash
# The local dev server: every API route on an in-memory backend with seeded demo data, mail
# written to ./outbox as .eml, and the reference Users tab page at http://127.0.0.1:3000/.
#
#   scripts/dev.sh                          # http://127.0.0.1:3000/
#   scripts/dev.sh --port 8080 --outbox /tmp/mail
#   scripts/dev.sh --delete-budget-ms 0     # every deletion goes the 202 + worker way
#   scripts/dev.sh --help
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo run -p devserver -- "$@"
