#!/usr/bin/env bash
# Runs every Lambda function under `cargo lambda watch` against the AWS emulator and invokes it
# with the sample events kept beside it (functions/<fn>/events/*.json), asserting each answer.
#
# Needs the emulator already running, with AWS_ENDPOINT_URL pointing at it: scripts/test.sh
# starts it and calls this script as a stage. By hand:
#   AWS_ENDPOINT_URL=http://127.0.0.1:<port> AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
#       AWS_REGION=us-east-1 scripts/lambda-invoke.sh
#
# Steps: create the template's tables (fresh name prefix), the queue, a user pool and the SES
# sender in the emulator, seed the users the events reference (infra/local/emulator_setup.py);
# build the five functions; start `cargo lambda watch` on a free loopback port with the
# functions' environment; invoke; stop the watcher (trap, whatever happens).
#
# delivery-events: its sample SNS events are rewritten to carry the SES message id of messages
# message-user sent just before (invoke_checks.py ses-event), then the rows' statuses are read
# back (delivered, bounced; an unknown id is ignored; an erased message is not brought back).
#
# DELETE_BUDGET_MS is set to 1 ms here so the HTTP delete hands its work to the queue (202) and
# the deletion-worker event finishes it, which the deletion-status call then checks.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# shellcheck source=SCRIPTDIR/lib.sh
source "$root/scripts/lib.sh"

if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
    echo "lambda-invoke: AWS_ENDPOINT_URL is not set: start the emulator with scripts/test.sh" \
        "(STAGES=lambda-invoke scripts/test.sh), or point AWS_ENDPOINT_URL at a running moto server" >&2
    exit 2
fi
if ! emulator_answers "$AWS_ENDPOINT_URL"; then
    echo "lambda-invoke: no emulator answers at AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL (start it with scripts/test.sh)" >&2
    exit 2
fi
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}"

ensure_venv
export PATH="$root/.venv/bin:$PATH"
py="$root/.venv/bin/python"

functions=(message-user delete-user list-users audit-log deletion-worker delivery-events sweeper token-revocation)
for fn in "${functions[@]}"; do
    if [[ ! -f "functions/$fn/src/main.rs" ]]; then
        echo "lambda-invoke: functions/$fn/src/main.rs does not exist: nothing to run" >&2
        exit 1
    fi
done

run_id="$(date +%s)-$$"
work="$root/.tmp/lambda-invoke-$run_id"
mkdir -p "$work"
env_file="$work/lambda.env"

# --- the emulator's resources and seed data ---------------------------------------------------
"$py" infra/local/emulator_setup.py --prefix "li-$run_id" --env-file "$env_file" \
    --set DELETE_BUDGET_MS=1 --set RUST_LOG=info --set APP_CLIENT_ID=3n4b5urk1ft4fl3mg5e62d9ado \
    functions/*/events/*.json

# --- build first, exactly as the watcher runs them (`cargo run --bin <fn>` at the workspace
# root), so no function compiles inside its first invocation's deadline. One cargo call for all
# of them: a call per binary would resolve the SDK's features anew for each and rebuild it ------
bins=()
for fn in "${functions[@]}"; do bins+=(--bin "$fn"); done
echo "lambda-invoke: cargo build ${bins[*]}" >&2
cargo build --quiet "${bins[@]}"

# --- the watcher: its own process group, stopped on exit ---------------------------------------
port="$(free_port)"
watch_log="$work/watch.log"
setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" --ignore-changes --timeout 120 \
    --env-file "$env_file" >"$watch_log" 2>&1 &
watch_pid=$!
stop_watch() {
    if kill -0 "$watch_pid" 2>/dev/null; then
        # The watcher runs each function as a child process: stop the whole group it leads.
        kill -TERM -- "-$watch_pid" 2>/dev/null || kill -TERM "$watch_pid" 2>/dev/null || true
        wait "$watch_pid" 2>/dev/null || true
    fi
}
on_exit stop_watch

deadline=$((SECONDS + 60))
until "$py" -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; do
    if ! kill -0 "$watch_pid" 2>/dev/null || ((SECONDS >= deadline)); then
        echo "lambda-invoke: cargo lambda watch did not listen on 127.0.0.1:$port; its log:" >&2
        cat "$watch_log" >&2
        exit 1
    fi
    sleep 0.3
done
echo "lambda-invoke: cargo lambda watch on 127.0.0.1:$port (pid $watch_pid, log $watch_log)" >&2

# --- the cases: function, event, expectation ----------------------------------------------------
# Expectation (see infra/local/invoke_checks.py): accepted HTTP statuses separated by |, then
# optional `:key=value` checks on the JSON body; `batch-ok` for an SQS partial batch response
# without failures; `ok` for a function that answers nothing. A 4th word `same-as-previous`
# compares message_id with the previous answer.
# Sending and delivery events come before the deletions: deleting user-1 erases its messages.
message_cases=(
    "list-users list-users 200"
    "list-users list-users-no-claims 401:code=unauthenticated"
    "message-user send-message 201:status=sent"
    "message-user send-message-base64 201:status=sent"
    "message-user send-message-idempotent 201:status=sent"
    "message-user send-message-idempotent 201:status=sent same-as-previous"
    "message-user send-message-subject-invalid 400:code=subject_invalid"
    "message-user send-message-no-claims 401:code=unauthenticated"
    "message-user message-history 200"
)
deletion_cases=(
    "delete-user deletion-preview 200"
    "delete-user delete-privileged-without-acknowledgement 422:code=acknowledgement_required"
    "delete-user delete-user 200|202"
    "delete-user delete-privileged-acknowledged 200|202"
    "deletion-worker sqs-continue-deletion batch-ok"
)
checks="infra/local/invoke_checks.py"
failures=0
invocations=0
previous=""
declare -A answers=() # "fn event" -> the first answer's file

# invoke FN DATA_FILE EXPECT [EXTRA] LABEL: one invocation, its answer checked and printed.
invoke() {
    local fn="$1" data="$2" expect="$3" extra="$4" label="$5" out detail
    out="$work/$fn-$(basename "$data" .json)-$((++invocations)).json"
    last_answer="$out"
    if ! cargo lambda invoke "$fn" --data-file "$data" --invoke-address 127.0.0.1 --invoke-port "$port" \
        --output-format json >"$out" 2>"$out.err"; then
        echo "FAIL  $label: cargo lambda invoke failed:"
        sed 's/^/      /' "$out.err"
        failures=$((failures + 1))
        return 0
    fi
    local same=()
    if [[ "$extra" == same-as-previous ]]; then same=("same-as:$previous"); fi
    if detail="$("$py" "$checks" answer "$out" "$expect" "${same[@]}")"; then
        echo "ok    $label ($expect${extra:+ $extra})"
    else
        echo "FAIL  $label (expected $expect${extra:+ $extra})"
        failures=$((failures + 1))
    fi
    echo "$detail"
    previous="$out"
}

# run_cases CASE...: each case as described above; remembers each "fn event"'s first answer.
run_cases() {
    local case fn event expect extra
    for case in "$@"; do
        read -r fn event expect extra <<<"$case"
        invoke "$fn" "functions/$fn/events/$event.json" "$expect" "${extra:-}" "$fn $event"
        if [[ -z "${answers["$fn $event"]:-}" ]]; then answers["$fn $event"]="$last_answer"; fi
    done
}

# check LABEL CMD...: one invoke_checks.py check that is not an invocation.
check() {
    local label="$1" detail
    shift
    if detail="$("$py" "$checks" "$@")"; then
        echo "ok    $label"
    else
        echo "FAIL  $label"
        failures=$((failures + 1))
    fi
    echo "$detail"
}

run_cases "${message_cases[@]}"

# --- delivery events (SES -> SNS -> delivery-events) about the messages sent above ------------
events=functions/delivery-events/events
# ses_event SEND_CASE SAMPLE OUT: the sample rewritten to be about that send's message; sets
# `message_id` (empty when the send failed, which was reported above).
ses_event() {
    message_id=""
    local sent="${answers["$1"]:-}"
    if [[ -n "$sent" ]] && message_id="$("$py" "$checks" ses-event "$sent" "$2" "$3")"; then
        return 0
    fi
    echo "FAIL  no SES event for '$1' (its send did not answer with a ses_message_id)"
    failures=$((failures + 1))
    message_id=""
    return 1
}
delivered_event="$work/sns-ses-delivery.json"
if ses_event "message-user send-message" "$events/sns-ses-delivery.json" "$delivered_event"; then
    delivered_id="$message_id"
    invoke delivery-events "$delivered_event" ok "" "delivery-events sns-ses-delivery"
    check "the message is delivered" message-status "$env_file" "$delivered_id" delivered
    # SNS delivers at least once: the same event again changes nothing.
    invoke delivery-events "$delivered_event" ok "" "delivery-events sns-ses-delivery (again)"
    check "the message is still delivered" message-status "$env_file" "$delivered_id" delivered
fi
if ses_event "message-user send-message-base64" "$events/sns-ses-bounce.json" "$work/sns-ses-bounce.json"; then
    bounced_id="$message_id"
    invoke delivery-events "$work/sns-ses-bounce.json" ok "" "delivery-events sns-ses-bounce"
    check "the other message bounced" message-status "$env_file" "$bounced_id" bounced
fi
# The samples as they are: about an SES message id nobody sent here, ignored.
invoke delivery-events "$events/sns-ses-delivery.json" ok "" "delivery-events sns-ses-delivery (unknown message)"

run_cases "${deletion_cases[@]}"

# --- what the HTTP deletes queued: delivered to the worker like the event source mapping would --
for round in 1 2 3 4 5 6; do
    event_file="$work/queue-round-$round.json"
    n="$("$py" "$checks" sqs-event "$env_file" "$event_file")"
    ((n > 0)) || break
    # Two continuations of one job in a batch are normal (at-least-once, and the sample event
    # above queued more): one runner takes the job, the other record is reported for a retry
    # ("another runner holds the job"), so failures are allowed here; the status and erasure
    # checks below decide.
    invoke deletion-worker "$event_file" batch-any "" "deletion-worker ($n queued continuation(s), round $round)"
    "$py" "$checks" ack "$env_file" "$event_file" "$last_answer"
done

invoke delete-user functions/delete-user/events/deletion-status.json "200:status=completed" "" \
    "delete-user deletion-status (after the worker)"

# --- the deletions really erased the cascaded data ---------------------------------------------
if detail="$("$py" "$checks" erased "$env_file" user-1 admin-2 --kept owner-1)"; then
    echo "ok    the deletions erased the cascaded data"
else
    echo "FAIL  the deletions did not erase everything"
    failures=$((failures + 1))
fi
echo "$detail"

# --- the audit trail and the erasure lookup, after the deletions ---------------------------------
audit_cases=(
    "audit-log audit-log 200"
    "audit-log audit-log-target 200:items.0.event_type=admin_deleted_user,items.0.target_id=user-1"
    "audit-log erasures 200:erasures.0.user_id=user-1,erasures.0.status=completed"
    "audit-log audit-log-no-claims 401:code=unauthenticated"
)
run_cases "${audit_cases[@]}"

# --- a late delivery event about an erased message does not bring its row back -----------------
if [[ -n "${delivered_id:-}" ]]; then
    invoke delivery-events "$delivered_event" ok "" "delivery-events sns-ses-delivery (message erased)"
    check "the erased message stays erased" message-status "$env_file" "$delivered_id" absent
fi

# --- the scheduled sweep: nothing is stuck, so it queues nothing it should not ---------------
invoke sweeper functions/sweeper/events/scheduled.json sweep "" "sweeper scheduled"

# --- a sign-out in Cognito (CloudTrail through EventBridge) ends the caller's tokens ----------
revoke_event="$work/admin-user-global-sign-out.json"
"$py" "$checks" cloudtrail-event "$env_file" \
    functions/token-revocation/events/admin-user-global-sign-out.json "$revoke_event"
invoke token-revocation "$revoke_event" "doc:revoked=admin-1" "" "token-revocation AdminUserGlobalSignOut"
invoke token-revocation functions/token-revocation/events/admin-disable-user-failed.json "doc:ignored" "" \
    "token-revocation a failed AdminDisableUser (ignored)"
invoke token-revocation functions/token-revocation/events/admin-user-global-sign-out.json "doc:ignored" "" \
    "token-revocation a sign-out in another user pool (ignored)"
# admin-1's token in the sample was issued before the sign-out: it opens nothing any more.
invoke list-users functions/list-users/events/list-users.json "401:code=unauthenticated" "" \
    "list-users with a token issued before the sign-out"

if ((failures > 0)); then
    echo "lambda-invoke: $failures check(s) failed; cargo lambda watch log: $watch_log" >&2
    tail -n 40 "$watch_log" >&2
    exit 1
fi
echo "lambda-invoke: all $invocations invocations and every check passed"
rm -rf "$work"
