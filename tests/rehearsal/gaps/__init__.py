"""What ministack 1.5.33 lacks and the rehearsal needs, each addition in a module of its own and
written as AWS documents the behaviour. Each checks that what it patches is there, so a ministack
other than the pinned one fails loudly instead of rehearsing something else."""

import fnmatch
import importlib.metadata

PINNED = "1.5.33"


def fail(why: str):
    raise SystemExit(f"rehearsal launcher: {why}; tests/rehearsal/requirements.txt pins ministack {PINNED}")


def require(module, name: str):
    if not hasattr(module, name):
        fail(f"{module.__name__} has no {name}")
    return getattr(module, name)


def statements_naming(policy: dict | None, account: str, action: str) -> list[dict]:
    """The statements of a resource policy whose `Principal` names `account` (its root, its id, or
    `*`) and whose `Action` matches `action` (`service:Name`, wildcards and case as IAM reads them)."""
    def listed(value) -> list:
        return [value] if isinstance(value, str) else list(value or [])

    statements = (policy or {}).get("Statement") or []
    statements = [statements] if isinstance(statements, dict) else statements
    named = []
    for s in statements:
        principal = s.get("Principal", {})
        principals = listed(principal.get("AWS") if isinstance(principal, dict) else principal)
        if not any(p in ("*", account, f"arn:aws:iam::{account}:root") for p in principals):
            continue
        if any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in listed(s.get("Action"))):
            named.append(s)
    return named


def route(path: str, handle):
    """Serves `POST path` with `handle(body) -> (status, answer)`, JSON in and out, in front of
    ministack's own routes: the rehearsal's way to do what an AWS service does on its own."""
    import json

    import ministack.app as served

    inner = require(served, "app")

    async def app(scope, receive, send):
        if scope["type"] != "http" or scope["path"] != path or scope["method"] != "POST":
            return await inner(scope, receive, send)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            status, answer = handle(json.loads(body))
        except json.JSONDecodeError as e:
            status, answer = 400, {"message": f"not JSON: {e}"}
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(answer).encode()})

    served.app = app


def install():
    version = importlib.metadata.version("ministack")
    if version != PINNED:
        fail(f"ministack is {version}")
    from . import (bus_policy, cfn_conditions, delivery, ec2_account_settings, metric_alarms, organizations, rule_state,
                   s3control, scheduler, service_events, tagging)

    for addition in (bus_policy, metric_alarms, organizations, delivery, service_events, scheduler, ec2_account_settings,
                     s3control, tagging, cfn_conditions, rule_state):
        addition.install()
