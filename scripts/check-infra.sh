#!/usr/bin/env bash
# Static checks of infra/template.yaml (no AWS account, no network once the venvs exist):
#   1. cfn-lint (from .venv, requirements-dev.txt) must report nothing;
#   2. `sam validate` (SAM translator errors) and `sam validate --lint` (property errors), with the
#      SAM CLI from its own venv .sam-venv (infra/requirements-sam.txt; it pins an older boto3).
# The plan/IAM/route checks live in `cargo test -p integration-tests --test infra_plan`.
#
#   scripts/check-infra.sh            # everything
#   SKIP_SAM=1 scripts/check-infra.sh # cfn-lint only (e.g. where the SAM CLI cannot be installed)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
template="infra/template.yaml"

# --- cfn-lint ------------------------------------------------------------------------------
# shellcheck source=SCRIPTDIR/lib.sh
source "$root/scripts/lib.sh"
ensure_venv
echo "check-infra: cfn-lint $("$root/.venv/bin/cfn-lint" --version | awk '{print $2}') $template" >&2
# Non-zero exit on any error or warning; informational findings (I*) are not enabled.
"$root/.venv/bin/cfn-lint" -- "$template"
echo "check-infra: cfn-lint clean" >&2

if [[ -n "${SKIP_SAM:-}" ]]; then
    echo "check-infra: SKIP_SAM set: sam validate NOT run" >&2
    exit 0
fi

# --- SAM CLI in its own venv (idempotent: pip runs only when the requirements file changed) ---
sam_venv="$root/.sam-venv"
sync_venv check-infra "$sam_venv" "$root/infra/requirements-sam.txt" "$sam_venv/.requirements-sam.sha256" \
    "(takes a few minutes once)"

# No account is needed for validation; a region is (the translator builds ARNs with it).
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export SAM_CLI_TELEMETRY=0
sam="$sam_venv/bin/sam"
echo "check-infra: $("$sam" --version)" >&2
"$sam" validate --template "$template"
"$sam" validate --lint --template "$template"
echo "check-infra: sam validate and sam validate --lint clean" >&2
