"""Starts a moto server on 127.0.0.1 for one test (or `make demo`) and stops it with its parent.

Prints `PORT <n>` on stdout once the server listens (--port 0 picks a free one), then serves
until stdin reaches end of file: the parent holds the pipe, so the server ends when the test
that started it ends, even if that test is killed.

Every AWS call is written to stderr as one line `CALL <service>.<Action> <status>` (service from
the request's SigV4 scope, action from X-Amz-Target, the Action parameter, or method and path),
so tests can count and name exactly the calls a function made.
"""

import argparse
import io
import re
import sys
import threading
import urllib.parse

from werkzeug.serving import make_server

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


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
    """WSGI middleware writing one CALL line per request."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        match = SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = match.group(1) if match else "moto"
        action = action_of(environ, body)
        status_seen = []

        def recording_start_response(status, headers, exc_info=None):
            status_seen.append(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        result = self.app(environ, recording_start_response)
        with self.lock:
            print(f"CALL {service}.{action} {status_seen[0] if status_seen else '?'}", file=sys.stderr, flush=True)
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

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
