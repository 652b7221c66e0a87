"""Starts ministack 1.5.33 on 127.0.0.1 for `make rehearse`, with what the rehearsal needs and it lacks.

Prints `PORT <n>` once the server answers, and serves until stdin reaches end of file, so that the
server ends with the rehearsal that started it, even a killed one.

Additions, each written as AWS documents the behaviour:
- the resource type `AWS::Events::EventBusPolicy` (CloudFormation User Guide): `Statement` is one
  policy statement of the bus's resource policy, with `StatementId` as its Sid, replacing any
  statement of that id; deleting the resource removes it. (The older `Action`/`Principal`/
  `Condition` form builds the same statement.)
- `AWS::CloudWatch::Alarm` with `Metrics` (metric math) instead of `MetricName` and `Namespace`:
  the alarm is created with its metrics, as PutMetricAlarm takes them. ministack evaluates no
  alarm, so nothing else changes.
- Organizations' resource policy (Organizations API reference: `PutResourcePolicy`,
  `DescribeResourcePolicy`, `DeleteResourcePolicy`; one policy per organization, kept by the
  management account) and the resource type `AWS::Organizations::ResourcePolicy` that manages it.

Each addition checks that what it replaces is there, so a ministack other than the pinned one fails
here, loudly, instead of rehearsing something else.
"""

import argparse
import importlib.metadata
import os
import socket
import sys
import threading
import time
import urllib.request

PINNED = "1.5.33"


def fail(why: str):
    raise SystemExit(f"rehearsal launcher: {why}; tests/rehearsal/requirements.txt pins ministack {PINNED}")


def require(module, name: str):
    if not hasattr(module, name):
        fail(f"{module.__name__} has no {name}")
    return getattr(module, name)


def install():
    version = importlib.metadata.version("ministack")
    if version != PINNED:
        fail(f"ministack is {version}")
    from ministack.services import eventbridge
    from ministack.services.cloudformation import provisioners

    handlers = require(provisioners, "_RESOURCE_HANDLERS")
    policies = require(eventbridge, "_event_bus_policies")
    region_of = require(eventbridge, "get_region")
    account_of = require(eventbridge, "get_account_id")

    def bus_statement(props: dict) -> tuple[str, dict]:
        bus = props.get("EventBusName") or "default"
        sid = props.get("StatementId")
        if not sid:
            raise ValueError("AWS::Events::EventBusPolicy StatementId is required")
        statement = dict(props.get("Statement") or {})
        if not statement:
            statement = {
                "Effect": "Allow",
                "Principal": {"AWS": props.get("Principal", "*")},
                "Action": props.get("Action", "events:PutEvents"),
                "Resource": f"arn:aws:events:{region_of()}:{account_of()}:event-bus/{bus}",
            }
            if props.get("Condition"):
                statement["Condition"] = props["Condition"]
        statement["Sid"] = sid
        return bus, statement

    def remove(bus: str, sid: str):
        policy = policies.get(bus)
        if policy:
            policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != sid]
            if not policy["Statement"]:
                del policies[bus]

    def create(logical_id, props, stack_name):
        bus, statement = bus_statement(props)
        remove(bus, statement["Sid"])
        policy = policies.get(bus) or {"Version": "2012-10-17", "Statement": []}
        policy["Statement"].append(statement)
        policies[bus] = policy
        return statement["Sid"], {}

    def delete(physical_id, props):
        remove(props.get("EventBusName") or "default", physical_id)

    def update(physical_id, props, *rest):
        delete(physical_id, props)
        return create(None, props, None)

    if "AWS::Events::EventBusPolicy" in handlers:
        fail("ministack now provisions AWS::Events::EventBusPolicy itself: drop this addition")
    handlers["AWS::Events::EventBusPolicy"] = {"create": create, "update": update, "delete": delete}

    alarm_record = require(provisioners, "_cw_metric_alarm_record")

    def alarm_with_metrics(name, props):
        metrics = props.get("Metrics")
        if not metrics:
            return alarm_record(name, props)
        stat = next((m["MetricStat"]["Metric"] for m in metrics if isinstance(m, dict) and m.get("MetricStat")), {})
        plain = {k: v for k, v in props.items() if k != "Metrics"}
        plain.setdefault("MetricName", stat.get("MetricName") or "metric-math")
        plain.setdefault("Namespace", stat.get("Namespace") or "metric-math")
        record = alarm_record(name, plain)
        record.pop("MetricName", None)
        record.pop("Namespace", None)
        record["Metrics"] = metrics
        return record

    provisioners._cw_metric_alarm_record = alarm_with_metrics
    install_organizations_resource_policy(handlers)


def install_organizations_resource_policy(handlers: dict):
    import json

    from ministack.core.responses import AccountScopedDict, error_response_json, get_account_id, new_uuid
    from ministack.services import organizations

    dispatch = require(organizations, "_DISPATCH")
    ensure_org = require(organizations, "_ensure_org")
    orgs = require(organizations, "_orgs")
    answer = require(organizations, "_json")
    for action in ("PutResourcePolicy", "DescribeResourcePolicy", "DeleteResourcePolicy"):
        if action in dispatch:
            fail(f"ministack now answers organizations:{action} itself: drop this addition")
    kept = AccountScopedDict()

    def put(payload):
        ensure_org()
        content = payload.get("Content")
        if not isinstance(content, str):
            return error_response_json("InvalidInputException", "Content is a JSON policy document string", 400)
        org = orgs["self"]["Id"]
        current = kept.get("policy")
        rp = current["ResourcePolicySummary"]["Id"] if current else "rp-" + new_uuid().replace("-", "")[:8]
        kept["policy"] = {
            "ResourcePolicySummary": {"Id": rp, "Arn": f"arn:aws:organizations::{get_account_id()}:resourcepolicy/{org}/{rp}"},
            "Content": content,
        }
        return answer(200, {"ResourcePolicy": kept["policy"]})

    def describe(_payload):
        if "policy" not in kept:
            return error_response_json("ResourcePolicyNotFoundException", "no resource policy", 400)
        return answer(200, {"ResourcePolicy": kept["policy"]})

    def delete(_payload):
        if "policy" not in kept:
            return error_response_json("ResourcePolicyNotFoundException", "no resource policy", 400)
        del kept["policy"]
        return answer(200, {})

    dispatch.update(PutResourcePolicy=put, DescribeResourcePolicy=describe, DeleteResourcePolicy=delete)

    def resource_create(logical_id, props, stack_name):
        content = props.get("Content")
        status, _, body = put({"Content": content if isinstance(content, str) else json.dumps(content)})
        if status != 200:
            raise ValueError(f"AWS::Organizations::ResourcePolicy: {body!r}")
        summary = json.loads(body)["ResourcePolicy"]["ResourcePolicySummary"]
        return summary["Id"], {"Id": summary["Id"], "Arn": summary["Arn"]}

    def resource_delete(physical_id, props):
        kept.pop("policy", None)

    def resource_update(physical_id, props, *rest):
        return resource_create(None, props, None)

    if "AWS::Organizations::ResourcePolicy" in handlers:
        fail("ministack now provisions AWS::Organizations::ResourcePolicy itself: drop this addition")
    handlers["AWS::Organizations::ResourcePolicy"] = {
        "create": resource_create, "update": resource_update, "delete": resource_delete,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    port = args.port or free_port()
    os.environ["GATEWAY_PORT"] = str(port)
    os.environ["BIND_HOST"] = "127.0.0.1"
    os.environ["IOT_MTLS_ENABLED"] = "0"
    install()
    from ministack.app import main as serve

    # ministack serves in the main thread (it installs signal handlers); this thread announces
    # the port once it answers, then ends the process when stdin closes.
    def announce_then_watch():
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_ministack/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    print(f"ministack did not answer on port {port} within 60 s", file=sys.stderr, flush=True)
                    os._exit(1)
                time.sleep(0.2)
        print(f"PORT {port}", flush=True)
        try:
            while sys.stdin.read(65536):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=announce_then_watch, daemon=True).start()
    sys.argv = ["ministack"]
    serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
