#!/usr/bin/env python3
"""Checks used by scripts/lambda-invoke.sh (boto3 and the standard library only).

  invoke_checks.py answer ANSWER.json EXPECT [same-as:PREVIOUS.json]
      Asserts a `cargo lambda invoke --output-format json` answer. EXPECT is `batch-ok` (an SQS
      partial batch response without failures), `batch-any` (one with or without failures) or
      `200|202[:key=value,...]`
      (accepted HTTP statuses, then checks on the JSON body; key paths use dots, and a number
      picks an item of a list: `items.0.event_type`).
      `same-as:FILE` also requires the same message_id as that earlier answer (idempotent replay).
  invoke_checks.py answer ANSWER.json ok
      Asserts the answer of a function that returns nothing (an SNS subscriber): JSON null.
  invoke_checks.py answer ANSWER.json sweep
      Asserts the sweeper's summary: lists of ids `queued`, `overdue`, `unconfirmed`, `failed`.
  invoke_checks.py answer ANSWER.json doc[:key[=value],...]
      Asserts a plain JSON object answer (an EventBridge target's): each key present, with
      that value when one is given.
  invoke_checks.py cloudtrail-event ENV_FILE SAMPLE.json OUT.json
      Writes the sample CloudTrail event (through EventBridge) with its userPoolId set to the
      environment's USER_POOL_ID, so the event is about this pool.
  invoke_checks.py ses-event SEND_ANSWER.json SNS_EVENT.json OUT.json
      Writes the sample SNS event with its SES event's mail.messageId (and commonHeaders) set
      to the ses_message_id of that earlier send answer, so the event is about that message;
      prints the message_id.
  invoke_checks.py message-status ENV_FILE MESSAGE_ID STATUS|absent
      Asserts the admin_messages row's status (or that the row does not exist).
  invoke_checks.py sqs-event ENV_FILE OUT.json
      Receives what is waiting in DELETION_QUEUE_URL and writes it as a Lambda SQS event (what
      the event source mapping would deliver); prints the number of records.
  invoke_checks.py ack ENV_FILE EVENT.json ANSWER.json
      Deletes the event's messages that the answer did not report as failures (as Lambda does).
  invoke_checks.py erased ENV_FILE DELETED_USER... --kept KEPT_USER
      Asserts that the deleted users' cascaded rows are gone and their profiles are tombstones,
      and that the kept user's rows are still there.
"""

import base64
import json
import sys

MAX_SHOWN = 160


def show(v):
    text = json.dumps(v, ensure_ascii=False)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def read_env(path):
    with open(path) as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


def client(env, service):
    import boto3

    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def http_body(answer):
    text = answer.get("body") or ""
    if answer.get("isBase64Encoded"):
        text = base64.b64decode(text).decode()
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def answer(path, expect, *extra):
    with open(path) as f:
        got = json.load(f)

    def fail(why):
        print(f"      {why}; answer: {show(got)}")
        sys.exit(1)

    if expect == "ok":
        if got is not None:
            fail("expected no answer (null)")
        print("      -> null")
        return
    if expect == "sweep":
        keys = ("queued", "overdue", "unconfirmed", "failed")
        if not isinstance(got, dict) or sorted(got) != sorted(keys):
            fail(f"expected the sweep summary {{{', '.join(keys)}}}")
        for key in keys:
            if not isinstance(got[key], list) or not all(isinstance(i, str) for i in got[key]):
                fail(f"expected {key} to be a list of ids")
        print(f"      -> {show(got)}")
        return
    if expect == "doc" or expect.startswith("doc:"):
        # A plain JSON document (not an HTTP answer): `key` present, or `key=value`.
        if not isinstance(got, dict):
            fail("expected a JSON object")
        for check in filter(None, expect[len("doc:"):].split(",")):
            key, eq, want = check.partition("=")
            if key not in got or (eq and str(got[key]) != want):
                fail(f"expected {check}")
        print(f"      -> {show(got)}")
        return
    if expect in ("batch-ok", "batch-any"):
        failures = got.get("batchItemFailures")
        if not isinstance(failures, list):
            fail("expected an SQS partial batch response")
        if expect == "batch-ok" and failures:
            fail(f"expected no batchItemFailures, got {failures!r}")
        print(f"      -> {show(got)}")
        return
    statuses, _, checks = expect.partition(":")
    status = got.get("statusCode")
    body = http_body(got)
    if str(status) not in statuses.split("|"):
        fail(f"expected status {statuses}, got {status}")
    for check in filter(None, checks.split(",")):
        key, _, want = check.partition("=")
        value = body
        for part in key.split("."):
            if isinstance(value, list) and part.isdigit():
                value = value[int(part)] if int(part) < len(value) else None
            else:
                value = value.get(part) if isinstance(value, dict) else None
        if str(value) != want:
            fail(f"expected {key}={want}, got {value!r}")
    for e in extra:
        if e.startswith("same-as:"):
            with open(e[len("same-as:"):]) as f:
                before = http_body(json.load(f)) or {}
            if not isinstance(body, dict) or body.get("message_id") != before.get("message_id"):
                fail(f"expected the first answer again (message_id {before.get('message_id')})")
    print(f"      -> {status} {show(body)}")


def ses_event(send_answer, sample, out):
    with open(send_answer) as f:
        sent = http_body(json.load(f))
    if not isinstance(sent, dict) or not sent.get("ses_message_id") or not sent.get("message_id"):
        sys.exit(f"      the send answer has no message_id / ses_message_id: {show(sent)}")
    with open(sample) as f:
        event = json.load(f)
    for record in event["Records"]:
        message = json.loads(record["Sns"]["Message"])
        message["mail"]["messageId"] = sent["ses_message_id"]
        if "commonHeaders" in message["mail"]:
            message["mail"]["commonHeaders"]["messageId"] = sent["ses_message_id"]
        record["Sns"]["Message"] = json.dumps(message)
    with open(out, "w") as f:
        json.dump(event, f)
    print(sent["message_id"])


def message_status(env_file, message_id, want):
    env = read_env(env_file)
    ddb = client(env, "dynamodb")
    item = ddb.get_item(
        TableName=env["ADMIN_MESSAGES_TABLE"], Key={"message_id": {"S": message_id}}, ConsistentRead=True
    ).get("Item")
    got = "absent" if item is None else item.get("status", {}).get("S")
    if got != want:
        print(f"      admin_messages {message_id}: expected {want}, got {got}")
        sys.exit(1)
    print(f"      admin_messages {message_id}: {got}")


def sqs_event(env_file, out):
    env = read_env(env_file)
    sqs = client(env, "sqs")
    url = env["DELETION_QUEUE_URL"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=5, WaitTimeSeconds=0, AttributeNames=["All"]
    ).get("Messages", [])
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": arn,
            "awsRegion": env["AWS_REGION"],
        }
        for m in messages
    ]
    with open(out, "w") as f:
        json.dump({"Records": records}, f)
    print(len(records))


def ack(env_file, event_path, answer_path):
    env = read_env(env_file)
    sqs = client(env, "sqs")
    with open(event_path) as f:
        records = json.load(f)["Records"]
    with open(answer_path) as f:
        failed = {x["itemIdentifier"] for x in json.load(f).get("batchItemFailures", [])}
    for r in records:
        if r["messageId"] not in failed:
            sqs.delete_message(QueueUrl=env["DELETION_QUEUE_URL"], ReceiptHandle=r["receiptHandle"])


def erased(env_file, *args):
    env = read_env(env_file)
    ddb = client(env, "dynamodb")
    kept = args[args.index("--kept") + 1]
    deleted = [a for a in args[: args.index("--kept")]]

    # Every table of the cascade plan: how a user's rows are found (the index, and its key).
    lookups = {
        "TRANSACTIONS_TABLE": (None, "user_id"),
        "FOLLOWED_COMPANIES_TABLE": (None, "user_id"),
        "BILLING_RECORDS_TABLE": (None, "user_id"),
        "SESSIONS_TABLE": ("by_user", "user_id"),
        "HELP_REQUESTS_TABLE": ("by_user", "user_id"),
        "ADMIN_MESSAGES_TABLE": ("by_recipient", "recipient_id"),
    }

    def count(var, user):
        index, attr = lookups[var]
        query = {
            "TableName": env[var],
            "KeyConditionExpression": "#u = :u",
            "ExpressionAttributeNames": {"#u": attr},
            "ExpressionAttributeValues": {":u": {"S": user}},
            "Select": "COUNT",
        }
        if index:
            query["IndexName"] = index
        return ddb.query(**query)["Count"]

    tables = list(lookups)
    problems = []
    for user in deleted:
        for var in tables:
            n = count(var, user)
            if n:
                problems.append(f"{var}: {n} rows of {user} left")
        profile = ddb.get_item(TableName=env["PROFILES_TABLE"], Key={"user_id": {"S": user}}).get("Item", {})
        if "email" in profile or "deleted_at" not in profile:
            problems.append(f"the profile of {user} is not a tombstone")
    for var in tables:
        if count(var, kept) == 0:
            problems.append(f"{var}: the rows of {kept} (not deleted) are gone")
    if problems:
        print("      " + "\n      ".join(problems))
        sys.exit(1)
    print(
        f"      {', '.join(deleted)}: every cascaded table empty, profiles are tombstones; "
        f"{kept}: untouched"
    )


def cloudtrail_event(env_file, sample, out):
    env = read_env(env_file)
    with open(sample) as f:
        event = json.load(f)
    event["detail"]["requestParameters"]["userPoolId"] = env["USER_POOL_ID"]
    with open(out, "w") as f:
        json.dump(event, f)


if __name__ == "__main__":
    commands = {
        "answer": answer,
        "ses-event": ses_event,
        "cloudtrail-event": cloudtrail_event,
        "message-status": message_status,
        "sqs-event": sqs_event,
        "ack": ack,
        "erased": erased,
    }
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
