#!/usr/bin/env bash
# THE test command. Starts the AWS emulator (scripts/emulator.py: moto server, pinned in
# requirements-dev.txt, plus SESv2's suppression list) on a free loopback port, points the AWS
# SDK at it and runs every test stage in order.
#
#   scripts/test.sh                                  # everything
#   scripts/test.sh -p integration-tests -- --nocapture   # extra args go to `cargo test`
#   STAGES=cargo-test scripts/test.sh                # only the named stages (comma-separated)
#   STAGES=dynalite scripts/test.sh                  # only the cascade flows on dynalite
#
# With `-p/--package` in the arguments `--workspace` is left out, so one crate can be iterated on.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# ---------------------------------------------------------------------------------------------
# Stage helper: `stage NAME cmd...` runs one named stage (unless STAGES excludes it) and prints
# its duration; the summary at the end lists every stage run.
# ---------------------------------------------------------------------------------------------
declare -a summary=()
stage() {
    local name="$1"
    shift
    if [[ -n "${STAGES:-}" && ",${STAGES}," != *",${name},"* ]]; then
        summary+=("$(printf '%-22s skipped (STAGES=%s)' "$name" "$STAGES")")
        return 0
    fi
    printf '\n==> stage %s: %s\n' "$name" "$*" >&2
    local start=$SECONDS status=0
    "$@" || status=$?
    local took=$((SECONDS - start))
    if [[ $status -ne 0 ]]; then
        summary+=("$(printf '%-22s FAILED after %ss (exit %s)' "$name" "$took" "$status")")
        printf '<== stage %s FAILED after %ss (exit %s)\n' "$name" "$took" "$status" >&2
        print_summary
        exit "$status"
    fi
    summary+=("$(printf '%-22s ok in %ss' "$name" "$took")")
    printf '<== stage %s ok in %ss\n' "$name" "$took" >&2
}
print_summary() {
    printf '\n---- test.sh summary ----\n' >&2
    local line
    for line in "${summary[@]}"; do printf '  %s\n' "$line" >&2; done
}

# ---------------------------------------------------------------------------------------------
# Tools: the project venv (moto server, cfn-lint, cargo-lambda, schemathesis).
# ---------------------------------------------------------------------------------------------
# shellcheck source=SCRIPTDIR/lib.sh
source "$root/scripts/lib.sh"
ensure_venv

# ---------------------------------------------------------------------------------------------
# The emulator: scripts/emulator.py (moto server with SESv2's suppression list) on a free
# loopback port, stopped on exit whatever happens; its log is kept only when something failed.
# ---------------------------------------------------------------------------------------------
start_emulator test.sh moto

use_emulator
# Never let a developer's own AWS profile or a real endpoint leak into the tests (use_emulator
# unsets those; the dynalite stage sets DYNALITE_ENDPOINT for its own run only).
unset DYNALITE_ENDPOINT

# ---------------------------------------------------------------------------------------------
# Stages, in order.
# ---------------------------------------------------------------------------------------------
cargo_args=(test)
selects_package=0
for arg in "$@"; do
    case "$arg" in
        --) break ;;
        -p | --package | --package=*) selects_package=1 ;;
    esac
done
if [[ $selects_package -eq 0 ]]; then cargo_args+=(--workspace); fi
cargo_args+=("$@")

stage cargo-test cargo "${cargo_args[@]}"

# The cascade flows a second time, with the user-data tables in dynalite (npm, pinned in
# tests/dynalite/package-lock.json): an independent DynamoDB, strict where moto is lenient
# (batch limits, validation, pages, error shapes). It has no transactions, so profiles, jobs,
# the audit log, Cognito and SQS stay on moto; see shared/test-support/src/dynalite.rs.
# Arguments after `--` go to the test binaries here too.
dynalite_flows() {
    start_dynalite test.sh || return 1
    local test_args=() after_dashes=0 arg status=0
    for arg in "$@"; do
        if [[ $after_dashes -eq 1 ]]; then
            test_args+=("$arg")
        elif [[ "$arg" == "--" ]]; then
            after_dashes=1
        fi
    done
    # The same package selection as the cargo-test stage: the same features, so the test
    # binaries built there are reused instead of built again.
    local scope=(--workspace)
    if [[ $selects_package -eq 1 ]]; then scope=(-p integration-tests); fi
    DYNALITE_ENDPOINT="$dynalite_endpoint" cargo test "${scope[@]}" \
        --test deletion_flow --test user_data_store -- "${test_args[@]}" || status=$?
    stop_dynalite
    if [[ $status -eq 0 ]]; then rm -f "$dynalite_log"; else echo "test.sh: dynalite log kept at $dynalite_log" >&2; fi
    return "$status"
}
stage dynalite dynalite_flows "$@"

# >>> LATER STAGES
# The emulator above is still running here and AWS_ENDPOINT_URL points at it.
stage openapi "$root/.venv/bin/openapi-spec-validator" docs/openapi.yaml
stage openapi-lint "$root/scripts/openapi-lint.sh"
stage schemathesis "$root/scripts/schemathesis.sh"
stage check-infra "$root/scripts/check-infra.sh"
stage lambda-invoke "$root/scripts/lambda-invoke.sh"
stage browser-e2e "$root/scripts/e2e.sh"
# <<< LATER STAGES

print_summary
