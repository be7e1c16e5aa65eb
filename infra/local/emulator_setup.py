#!/usr/bin/env python3
"""Prepare the AWS emulator (moto server at AWS_ENDPOINT_URL) for running the Lambda functions
locally, and write the functions' environment file.

What it creates, all under a fresh name prefix so runs never collide:
- every AWS::DynamoDB::Table of infra/template.yaml (keys, GSIs, TTL), named like the stack
  would name them (`${AWS::StackName}` -> the prefix);
- the deletion queue and its dead-letter queue, a Cognito user pool, the SES sender identity and
  configuration set;
- a profile (and a confirmed Cognito user) for every user id the sample events reference
  (functions/*/events/*.json: the JWT `sub`, the `userId` path parameter, SQS bodies'
  `user_id`), with the role taken from the id (`owner-*`, `admin-*`, else `user`), plus a few
  rows of user data in every cascaded table for the deletion targets.

Usage: emulator_setup.py --prefix P --env-file OUT [--set KEY=VALUE ...] EVENT.json ...
The env file holds every variable of the environment contract (same names as the template's
Globals) plus the AWS_* settings that point the SDK at the emulator.
"""

import argparse
import json
import os
import pathlib
import re
import sys
import time

import boto3
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
MAIL_FROM = "no-reply@teleperson.example"
SUPPORT_REPLY_TO = "hello@teleperson.com"


class CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short tags as {"Fn::X": value} / {"Ref": value}."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    name = suffix.lstrip("!")
    return {"Ref": value} if name == "Ref" else {f"Fn::{name}": value}


CfnLoader.add_multi_constructor("!", _tag)


def env_var_for(logical_id):
    """FollowedCompaniesTable -> FOLLOWED_COMPANIES_TABLE"""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id).upper()


def table_name(props, logical_id, prefix):
    name = props.get("TableName")
    if isinstance(name, dict) and "Fn::Sub" in name:
        return name["Fn::Sub"].replace("${AWS::StackName}", prefix)
    if isinstance(name, str):
        return f"{prefix}-{name}"
    return f"{prefix}-{logical_id}"


def create_tables(ddb, template, prefix):
    """Creates every table of the template; returns {ENV_VAR: physical name}."""
    names = {}
    for logical_id, res in template["Resources"].items():
        if res.get("Type") != "AWS::DynamoDB::Table":
            continue
        props = res["Properties"]
        name = table_name(props, logical_id, prefix)
        args = {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
        }
        if props.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = [
                {"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
                for g in props["GlobalSecondaryIndexes"]
            ]
        ddb.create_table(**args)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        names[env_var_for(logical_id)] = name
    return names


def referenced_users(event_files):
    ids = set()
    for path in event_files:
        event = json.loads(pathlib.Path(path).read_text())
        claims = (((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}).get("claims") or {}
        if claims.get("sub"):
            ids.add(claims["sub"])
        target = (event.get("pathParameters") or {}).get("userId")
        if target:
            ids.add(target)
        for record in event.get("Records") or []:
            try:
                body = json.loads(record.get("body") or "{}")
            except ValueError:
                continue
            if isinstance(body, dict) and body.get("user_id"):
                ids.add(body["user_id"])
    return sorted(ids)


def role_of(user_id):
    for role in ("owner", "admin"):
        if user_id.startswith(role):
            return role
    return "user"


def seed(ddb, cognito, pool_id, tables, users):
    created_at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    for uid in users:
        role = role_of(uid)
        email = f"{uid}@example.com"
        ddb.put_item(
            TableName=tables["PROFILES_TABLE"],
            Item={
                "user_id": {"S": uid},
                "email": {"S": email},
                "display_name": {"S": uid.replace("-", " ").title()},
                "role": {"S": role},
                "created_at": {"S": created_at},
            },
        )
        cognito.admin_create_user(
            UserPoolId=pool_id,
            Username=uid,
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": email}],
        )
        # Some data in every cascaded table (each user may be a deletion target).
        for i in range(3):
            ddb.put_item(
                TableName=tables["TRANSACTIONS_TABLE"],
                Item={"user_id": {"S": uid}, "transaction_id": {"S": f"tx-{i}"}},
            )
            ddb.put_item(
                TableName=tables["FOLLOWED_COMPANIES_TABLE"],
                Item={"user_id": {"S": uid}, "company_id": {"S": f"company-{i}"}},
            )
            ddb.put_item(
                TableName=tables["BILLING_RECORDS_TABLE"],
                Item={"user_id": {"S": uid}, "record_id": {"S": f"bill-{i}"}},
            )
            ddb.put_item(
                TableName=tables["SESSIONS_TABLE"],
                Item={"session_id": {"S": f"{uid}-session-{i}"}, "user_id": {"S": uid}},
            )
            ddb.put_item(
                TableName=tables["HELP_REQUESTS_TABLE"],
                Item={"request_id": {"S": f"{uid}-help-{i}"}, "user_id": {"S": uid}},
            )
            ddb.put_item(
                TableName=tables["ADMIN_MESSAGES_TABLE"],
                Item={
                    "message_id": {"S": f"{uid}-msg-{i}"},
                    "recipient_id": {"S": uid},
                    "sender_id": {"S": "owner-1"},
                    "subject": {"S": "A seeded message"},
                    "body": {"S": "Seeded for the erasure checks."},
                    "status": {"S": "delivered"},
                    "created_at": {"S": f"2025-01-01T00:00:0{i}.000Z"},
                },
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--env-file", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra/overriding variables")
    parser.add_argument("events", nargs="*")
    args = parser.parse_args()

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        sys.exit("emulator_setup.py: AWS_ENDPOINT_URL is not set (start the emulator with scripts/test.sh)")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        region_name=region,
    )
    client = lambda service: session.client(service, endpoint_url=endpoint)  # noqa: E731

    template = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)
    ddb = client("dynamodb")
    tables = create_tables(ddb, template, args.prefix)

    sqs = client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"{args.prefix}-deletion-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=f"{args.prefix}-deletion",
        Attributes={
            "VisibilityTimeout": "720",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]

    cognito = client("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName=f"{args.prefix}-users")["UserPool"]["Id"]

    sesv2 = client("sesv2")
    sesv2.create_email_identity(EmailIdentity=MAIL_FROM)
    config_set = f"{args.prefix}-admin-messages"
    sesv2.create_configuration_set(ConfigurationSetName=config_set)

    users = referenced_users(args.events)
    seed(ddb, cognito, pool_id, tables, users)

    env = dict(tables)
    env.update(
        {
            "USER_POOL_ID": pool_id,
            "MAIL_FROM": MAIL_FROM,
            "SUPPORT_REPLY_TO": SUPPORT_REPLY_TO,
            "SES_CONFIGURATION_SET": config_set,
            "DELETION_QUEUE_URL": queue_url,
            "DELETE_BUDGET_MS": "20000",
            "WORKER_BUDGET_MS": "100000",
            "MESSAGES_PER_MINUTE": "30",
            "DELETIONS_PER_HOUR": "20",
            "ACCESS_TOKEN_LIFETIME_SECONDS": "3600",
            "DELETION_LEASE_MARGIN_MS": "30000",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        }
    )
    for kv in args.set:
        key, _, value = kv.partition("=")
        env[key] = value
    for key, value in env.items():
        if "\n" in value:
            sys.exit(f"emulator_setup.py: {key} has a newline")
    pathlib.Path(args.env_file).write_text("".join(f"{k}={v}\n" for k, v in sorted(env.items())))
    print(
        f"emulator_setup.py: {len(tables)} tables, queue, user pool, SES identity; "
        f"users {', '.join(users)} (prefix {args.prefix})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
