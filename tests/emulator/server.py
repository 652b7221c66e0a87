"""Starts a moto server on 127.0.0.1 for one test (or `make demo`) and stops it with its parent.

Prints `PORT <n>` on stdout once the server listens (--port 0 picks a free one), then serves
until stdin reaches end of file: the parent holds the pipe, so the server ends when the test
that started it ends, even if that test is killed.

Every AWS call is written to stderr as one line `CALL <service>.<Action> <status> <caller>`
(service from the request's SigV4 scope, action from X-Amz-Target, the Action parameter, or
method and path; caller the assumed-role session or IAM user whose access key signed it, `-`
for keys moto did not issue), so tests can count and name exactly the calls a function made, and check
each against the IAM policy of the role that made it. A DynamoDB call on one item adds its
partition key, `pk=<value>`, for the check against `dynamodb:LeadingKeys`.

Tests inject faults with `POST /_guardrail/faults` and a JSON body
`{"service": "ec2", "action": "EnableEbsEncryptionByDefault", "region": "us-west-2",
  "status": 503, "code": "Unavailable", "count": 1}` (region and count optional; count -1 means
every matching call; an optional "body" matches only requests whose body contains that text,
such as one role's ARN in an AssumeRole) and clear them with `DELETE /_guardrail/faults`. A faulted call gets the
service's error shape and never reaches moto.

Lambda's asynchronous `Invoke` (`X-Amz-Invocation-Type: Event`), which moto can only serve by
running the function in Docker, is answered here as Lambda answers it (202, empty body) and the
invocation kept: `GET /_guardrail/invocations` hands the kept ones over, oldest first, each
`{"function": NAME, "payload": JSON, "caller": ARN}`, so a test can deliver them to the function.
"""

import argparse
import io
import json
import re
import sys
import threading
import urllib.parse

from werkzeug.serving import make_server

import ec2_account_settings
import iam_quotas
import lambda_account_settings
import organizations_resource_policy
import stackset_targets

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

SCOPE = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
# Services whose errors are XML (query protocols); the others answer JSON.
XML_ERRORS = {"ec2", "iam", "sts", "sns", "autoscaling", "cloudformation"}


def caller_of(access_key: str) -> str:
    """Who signed with a moto access key: `arn:aws:sts::<account>:assumed-role/<role>/<session>`
    for AssumeRole credentials, the user's ARN for an IAM user's key, `-` for any other key."""
    from moto.iam.models import get_account_id_from, iam_backends
    from moto.sts.models import sts_backends

    account = get_account_id_from(access_key)
    key = iam_backends[account]["aws"].access_keys.get(access_key)
    if key is None:
        return "-"
    if key.role_arn:
        for assumed in list(sts_backends[account]["aws"].assumed_roles):
            if assumed.access_key_id == access_key:
                role = key.role_arn.rsplit("/", 1)[-1]
                return f"arn:aws:sts::{account}:assumed-role/{role}/{assumed.session_name}"
        return key.role_arn
    return f"arn:aws:iam::{account}:user/{key.user_name}" if key.user_name else "-"


INVOCATIONS = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")


def action_of(environ, body: bytes) -> str:
    if INVOCATIONS.match(environ.get("PATH_INFO", "")):
        return "Invoke"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    if body and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if "Action" in params:
            return params["Action"][0]
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    return f"{environ.get('REQUEST_METHOD', '?')}:{environ.get('PATH_INFO', '/')}"


class CallLog:
    """WSGI middleware: one CALL line per request, and the injected faults."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.faults = []
        self.invocations = []
        # DynamoDB applies a conditional write atomically; moto checks the condition and writes
        # without a lock, so concurrent claims could both win. Serialising DynamoDB requests
        # restores DynamoDB's guarantee.
        self.dynamodb = threading.Lock()

    def log(self, service, action, status, caller, key=None):
        extra = f" pk={key}" if key else ""
        with self.lock:
            print(f"CALL {service}.{action} {status} {caller}{extra}", file=sys.stderr, flush=True)

    def control(self, environ, start_response, body: bytes):
        with self.lock:
            if environ["REQUEST_METHOD"] == "POST":
                self.faults.append(json.loads(body or b"{}"))
            elif environ["REQUEST_METHOD"] == "DELETE":
                self.faults.clear()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    def fault_for(self, service, action, region, body: bytes):
        text = urllib.parse.unquote_plus(body.decode("utf-8", "replace"))
        with self.lock:
            for fault in self.faults:
                if fault.get("service", service) != service or fault.get("action", action) != action:
                    continue
                if fault.get("region", region) != region or fault.get("count", -1) == 0:
                    continue
                if fault.get("body", "") not in text:
                    continue
                if fault.get("count", -1) > 0:
                    fault["count"] -= 1
                return fault
        return None

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if environ.get("PATH_INFO", "").startswith("/_guardrail/faults"):
            return self.control(environ, start_response, body)
        if environ.get("PATH_INFO", "") == "/_guardrail/invocations":
            with self.lock:
                taken, self.invocations = self.invocations, []
            payload = json.dumps(taken).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
            return [payload]
        match = SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        access_key, region, service = match.groups() if match else ("", "", "moto")
        action = action_of(environ, body)
        caller = caller_of(access_key) if access_key else "-"

        fault = self.fault_for(service, action, region, body)
        if fault is not None:
            status = int(fault.get("status", 503))
            code = fault.get("code", "ServiceUnavailable")
            message = fault.get("message", "fault injected by the test")
            if service in XML_ERRORS:
                payload = (
                    f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
                    f"<RequestID>guardrail-fault</RequestID></Response>"
                ).encode()
                content_type = "text/xml"
            else:
                payload = json.dumps({"__type": code, "message": message}).encode()
                content_type = "application/x-amz-json-1.0"
            start_response(f"{status} FAULT", [("Content-Type", content_type), ("x-amzn-ErrorType", code)])
            self.log(service, action, f"{status}-injected", caller)
            return [payload]

        invoked = INVOCATIONS.match(environ.get("PATH_INFO", ""))
        if invoked and environ.get("HTTP_X_AMZ_INVOCATION_TYPE") == "Event":
            try:
                payload = json.loads(body or b"null")
            except ValueError:
                payload = body.decode("utf-8", "replace")
            with self.lock:
                self.invocations.append(
                    {"function": urllib.parse.unquote(invoked.group(1)), "payload": payload, "caller": caller}
                )
            start_response("202 Accepted", [("Content-Type", "application/json"), ("Content-Length", "0")])
            self.log(service, action, "202", caller)
            return [b""]

        status_seen = []

        def recording_start_response(status, headers, exc_info=None):
            status_seen.append(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        key = None
        if service == "dynamodb":
            key = partition_key(body)
            with self.dynamodb:
                result = self.app(environ, recording_start_response)
        else:
            result = self.app(environ, recording_start_response)
        self.log(service, action, status_seen[0] if status_seen else "?", caller, key)
        return result


def partition_key(body: bytes):
    """The `pk` of the item a DynamoDB GetItem, PutItem, UpdateItem or DeleteItem names."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return None
    item = request.get("Key") or request.get("Item") or {}
    value = item.get("pk", {}).get("S") if isinstance(item, dict) else None
    # One token on the line: keys never hold whitespace, but the log must not be forged by one.
    return "".join(c if c.isprintable() and not c.isspace() else "_" for c in value) if value else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    ec2_account_settings.install()
    iam_quotas.install()
    lambda_account_settings.install()
    organizations_resource_policy.install()
    stackset_targets.install()
    app = CallLog(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"PORT {server.server_port}", flush=True)
    try:
        while sys.stdin.read(65536):
            pass
    except KeyboardInterrupt:
        pass
    server.shutdown()
    return 0


class QuietHandler(MotoRequestHandler):
    """No per-request access log: the CALL lines say more."""

    def log_request(self, *args, **kwargs):
        pass


if __name__ == "__main__":
    sys.exit(main())
