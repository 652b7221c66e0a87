"""Starts a moto server on 127.0.0.1 for one test (or `make demo`) and stops it with its parent.

Prints `PORT <n>` on stdout once the server listens (--port 0 picks a free one), then serves
until stdin reaches end of file: the parent holds the pipe, so the server ends when the test
that started it ends, even if that test is killed.

Every AWS call is written to stderr as one line `CALL <service>.<Action> <status>` (service from
the request's SigV4 scope, action from X-Amz-Target, the Action parameter, or method and path),
so tests can count and name exactly the calls a function made.

Tests inject faults with `POST /_guardrail/faults` and a JSON body
`{"service": "ec2", "action": "EnableEbsEncryptionByDefault", "region": "us-west-2",
  "status": 503, "code": "Unavailable", "count": 1}` (region and count optional; count -1 means
every matching call) and clear them with `DELETE /_guardrail/faults`. A faulted call gets the
service's error shape and never reaches moto.
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

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
# Services whose errors are XML (query protocols); the others answer JSON.
XML_ERRORS = {"ec2", "iam", "sts", "sns", "autoscaling", "cloudformation"}


def action_of(environ, body: bytes) -> str:
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
        # DynamoDB applies a conditional write atomically; moto checks the condition and writes
        # without a lock, so concurrent claims could both win. Serialising DynamoDB requests
        # restores DynamoDB's guarantee.
        self.dynamodb = threading.Lock()

    def log(self, service, action, status):
        with self.lock:
            print(f"CALL {service}.{action} {status}", file=sys.stderr, flush=True)

    def control(self, environ, start_response, body: bytes):
        with self.lock:
            if environ["REQUEST_METHOD"] == "POST":
                self.faults.append(json.loads(body or b"{}"))
            elif environ["REQUEST_METHOD"] == "DELETE":
                self.faults.clear()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    def fault_for(self, service, action, region):
        with self.lock:
            for fault in self.faults:
                if fault.get("service", service) != service or fault.get("action", action) != action:
                    continue
                if fault.get("region", region) != region or fault.get("count", -1) == 0:
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
        match = SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        region, service = (match.group(1), match.group(2)) if match else ("", "moto")
        action = action_of(environ, body)

        fault = self.fault_for(service, action, region)
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
            self.log(service, action, f"{status}-injected")
            return [payload]

        status_seen = []

        def recording_start_response(status, headers, exc_info=None):
            status_seen.append(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        if service == "dynamodb":
            with self.dynamodb:
                result = self.app(environ, recording_start_response)
        else:
            result = self.app(environ, recording_start_response)
        self.log(service, action, status_seen[0] if status_seen else "?")
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    ec2_account_settings.install()
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
