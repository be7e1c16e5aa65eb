#!/usr/bin/env python3
"""The AWS emulator of the tests, the benchmarks and the Lambda invocations: moto server
(moto[server]==5.2.5, pinned in requirements-dev.txt, installed into .venv) with the calls of
SESv2's account-level suppression list added, which moto does not have:

  PutSuppressedDestination     PUT    /v2/email/suppression/addresses        {EmailAddress, Reason}
  GetSuppressedDestination     GET    /v2/email/suppression/addresses/{EmailAddress}
  DeleteSuppressedDestination  DELETE /v2/email/suppression/addresses/{EmailAddress}

message-user asks GetSuppressedDestination about a recipient before sending (an address on
the list is answered with 422 recipient_suppressed); without these calls moto answers every one
of them with a 404 HTML page, which the SDK cannot tell from a missing address.

And one read for the tests, which moto has only as part of everything it holds:

  GET /moto-api/emulator/ses-messages   the mail SES accepted, oldest first:
                                        [{id, source, destinations, subject, body}, ...]

The same records as `ses.Message` in `/moto-api/data.json`, read without serialising the
whole emulator: data.json checks and encodes every attribute of every model instance of every
service, which takes seconds once a test run has filled moto (7-9 s for 9-13 MB at the end of
`cargo test`, measured 2026-12-03), holds the interpreter for much of that time, so every
other request to the emulator waits, and fails (500) when a concurrent request changes a
model in between. A test that reads the mail must not stall the requests of the tests running
beside it: their SDK clients give up after 3 s per attempt, as in Lambda.

Everything else is moto server as it is, with the same command line (`-H host -p port`, see
`--help`):

  .venv/bin/python scripts/emulator.py -H 127.0.0.1 -p 5000

scripts/lib.sh starts it (start_emulator) for scripts/test.sh and scripts/bench.sh.

How: the three operations are methods of moto's own SESv2 request handler (SESV2Response), which
routes a REST-JSON request to the method named after the operation that botocore's service model
matches for the method and path; the paths are also named in moto's SESv2 URL table. The list
lives on moto's SESv2 backend of the account and region the request is signed for, so
`POST /moto-api/reset` empties it like every other piece of moto state. The answers follow the
REST-JSON protocol: timestamps as epoch seconds, errors as the HTTP status, an
`x-amzn-ErrorType` header naming the error and a `{"message": ...}` body (NotFoundException 404
for an address that is not on the list, BadRequestException 400 for a malformed request).
Addresses are matched exactly as given (moto keeps the list; no case folding). The moto version
is pinned because this relies on its internals (moto/sesv2/responses.py, urls.py and
moto/core/responses.py at 5.2.5): a moto upgrade must be checked against this file.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any
from urllib.parse import unquote

import moto
import moto.moto_api._internal.urls
import moto.server
import moto.sesv2.urls
from moto.ses.models import Message, ses_backends
from moto.sesv2.responses import SESV2Response

MOTO_VERSION = "5.2.5"
REASONS = ("BOUNCE", "COMPLAINT")
SES_MESSAGES_PATH = "{0}/moto-api/emulator/ses-messages$"
SUPPRESSION_PATHS = (
    "{0}/v2/email/suppression/addresses$",
    "{0}/v2/email/suppression/addresses/(?P<EmailAddress>[^/]+)$",
)


def _suppression_list(backend: Any) -> dict[tuple[str | None, str], dict[str, Any]]:
    """The list, kept on the account's and region's SESv2 backend (reset clears its __dict__)."""
    entries = backend.__dict__.get("_suppressed_destinations")
    if entries is None:
        entries = backend.__dict__.setdefault("_suppressed_destinations", {})
    return entries


def _error(status: int, code: str, message: str) -> tuple[str, dict[str, Any]]:
    """A REST-JSON error: status, x-amzn-ErrorType, {"message": ...}."""
    return json.dumps({"message": message}), {
        "status": status,
        "x-amzn-ErrorType": code,
        "Content-Type": "application/json",
    }


def _ok(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return json.dumps(body), {"status": 200, "Content-Type": "application/json"}


def _path_address(handler: SESV2Response) -> str:
    """{EmailAddress} of the path, percent-decoded (the SDKs encode the @)."""
    address = handler.uri_match.get("EmailAddress")
    if not address:
        address = handler.path.rstrip("/").rsplit("/", 1)[-1]
    return unquote(address)


def _tenant(handler: SESV2Response) -> str | None:
    """TenantName (query string): its own list; absent = the account-level list."""
    value = handler.querystring.get("TenantName")
    if isinstance(value, list):
        value = value[0] if value else None
    return value or None


def put_suppressed_destination(self: SESV2Response) -> tuple[str, dict[str, Any]]:
    try:
        params = json.loads(self.body or "{}")
    except ValueError:
        return _error(400, "BadRequestException", "The request body is not JSON.")
    if not isinstance(params, dict):
        return _error(400, "BadRequestException", "The request body is not a JSON object.")
    address = params.get("EmailAddress")
    reason = params.get("Reason")
    if not isinstance(address, str) or not address:
        return _error(400, "BadRequestException", "EmailAddress is required.")
    if reason not in REASONS:
        return _error(400, "BadRequestException", f"Reason must be one of {', '.join(REASONS)}.")
    tenant = params.get("TenantName") or None
    _suppression_list(self.sesv2_backend)[(tenant, address)] = {
        "EmailAddress": address,
        "Reason": reason,
        # Epoch seconds, as the REST-JSON protocol sends a timestamp.
        "LastUpdateTime": round(time.time(), 3),
        "Attributes": {},
    }
    return _ok({})


def get_suppressed_destination(self: SESV2Response) -> tuple[str, dict[str, Any]]:
    address = _path_address(self)
    entry = _suppression_list(self.sesv2_backend).get((_tenant(self), address))
    if entry is None:
        return _error(404, "NotFoundException", f"Email address {address} does not exist on your suppression list.")
    return _ok({"SuppressedDestination": dict(entry)})


def delete_suppressed_destination(self: SESV2Response) -> tuple[str, dict[str, Any]]:
    address = _path_address(self)
    entries = _suppression_list(self.sesv2_backend)
    if entries.pop((_tenant(self), address), None) is None:
        return _error(404, "NotFoundException", f"Email address {address} does not exist on your suppression list.")
    return _ok({})


def ses_messages(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """GET /moto-api/emulator/ses-messages: every simple mail SES accepted, in every account and
    region, in the order each backend recorded them (what data.json lists as `ses.Message`)."""
    records = []
    for _account, regions in list(ses_backends.items()):
        for _region, backend in list(regions.items()):
            for message in list(backend.sent_messages):
                if isinstance(message, Message):
                    records.append(
                        {
                            "id": message.id,
                            "source": message.source,
                            "destinations": message.destinations,
                            "subject": message.subject,
                            "body": message.body,
                        }
                    )
    return 200, {"Content-Type": "application/json"}, json.dumps(records)


def install() -> None:
    """Adds the three operations to moto's SESv2 handler and URL table, and the mail read to
    moto's own API (before the apps exist)."""
    if moto.__version__ != MOTO_VERSION:
        print(
            f"emulator.py: moto {moto.__version__} is installed, this file is written for "
            f"{MOTO_VERSION} (requirements-dev.txt); check its SESv2 internals before relying on it",
            file=sys.stderr,
        )
    SESV2Response.put_suppressed_destination = put_suppressed_destination  # type: ignore[attr-defined]
    SESV2Response.get_suppressed_destination = get_suppressed_destination  # type: ignore[attr-defined]
    SESV2Response.delete_suppressed_destination = delete_suppressed_destination  # type: ignore[attr-defined]
    for path in SUPPRESSION_PATHS:
        moto.sesv2.urls.url_paths.setdefault(path, SESV2Response.dispatch)
    moto.moto_api._internal.urls.url_paths.setdefault(SES_MESSAGES_PATH, ses_messages)


def main(argv: list[str] | None = None) -> None:
    install()
    moto.server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
