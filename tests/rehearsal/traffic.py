"""Real traffic through the deployed stack: AWS services' events put where AWS puts them (CloudTrail
calls on a member account's default bus, GuardDuty findings on the security account's, Organizations
events on the management account's), routed by the templates' own rules and forwarding, to the
real function binaries; then what the functions did, what they alerted, what they recorded, what
they logged, and how often each ran (the `AWS/Lambda` `Invocations` metric)."""

import json
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_MEMBER = "111122223333"
SAMPLE_SECURITY = "999988887777"
FUNCTIONS = ["account-baseline", "tag-enforcer", "agent-quarantine"]


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_until(predicate, timeout: float = 30.0, every: float = 0.25):
    """The predicate's first truthy answer within `timeout` seconds, else its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = predicate()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(every)


class Traffic:
    def __init__(self, r):
        self.r = r
        self.security_lambda = r.client("lambda", r.security)
        self.cloudwatch = r.client("cloudwatch", r.security)
        self.sqs = r.client("sqs", r.security)
        self.alerts: list[dict] = []
        self.queue = ""

    # -- how events get in -------------------------------------------------------------------

    def emit(self, account: str, event: dict) -> str:
        """An AWS service's event on `account`'s default bus (tests/rehearsal/gaps/service_events.py)."""
        body = json.dumps({"account": account, "event": event}).encode()
        request = urllib.request.Request(f"{self.r.endpoint}/_rehearsal/service-event", data=body, method="POST",
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())["EventId"]

    def sample(self, path: str, **ids: str) -> dict:
        """A sample event of `events/`, in this organization's accounts, fresh, with new ids and
        every `old=new` of `ids` replaced."""
        text = (ROOT / "events" / path).read_text()
        text = text.replace(SAMPLE_MEMBER, self.r.member).replace(SAMPLE_SECURITY, self.r.security)
        for old, new in ids.items():
            text = text.replace(old, new)
        event = json.loads(text)
        event["id"] = str(uuid.uuid4())
        event["time"] = now()
        detail = event["detail"]
        for key in ("eventTime", "updatedAt", "createdAt"):
            if key in detail:
                detail[key] = now()
        if "eventID" in detail:
            detail["eventID"] = str(uuid.uuid4())
        return event

    # -- what came out -------------------------------------------------------------------------

    def invocations(self) -> dict[str, int]:
        """Each function's invocations so far, from the `AWS/Lambda` `Invocations` metric."""
        counts = {}
        for function in FUNCTIONS:
            points = self.cloudwatch.get_metric_statistics(
                Namespace="AWS/Lambda", MetricName="Invocations",
                Dimensions=[{"Name": "FunctionName", "Value": f"guardrail-{function}"}],
                StartTime=datetime.fromtimestamp(time.time() - 3600, timezone.utc),
                EndTime=datetime.fromtimestamp(time.time() + 60, timezone.utc),
                Period=3600, Statistics=["Sum"],
            )["Datapoints"]
            counts[function] = int(sum(p["Sum"] for p in points))
        return counts

    def subscribe_alerts(self):
        """An SQS queue subscribed to the alerts topic, as an operator's tooling would."""
        self.queue = self.sqs.create_queue(QueueName="rehearsal-alerts")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns = self.r.client("sns", self.r.security)
        topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":guardrail-alerts"))
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    def read_alerts(self) -> list[dict]:
        """Every alert received so far: the message attributes, plus `text`."""
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return self.alerts
            for message in got:
                envelope = json.loads(message["Body"])
                alert = {k: v.get("Value") for k, v in envelope.get("MessageAttributes", {}).items()}
                alert["text"] = envelope.get("Message", "")
                self.alerts.append(alert)
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])

    def alerts_for(self, event_id: str) -> list[dict]:
        return [a for a in self.read_alerts() if a.get("event_id") == event_id]

    def dead_letters(self, function: str) -> list[dict]:
        url = self.sqs.get_queue_url(QueueName=f"guardrail-{function}-dlq")["QueueUrl"]
        got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        return [json.loads(m["Body"]) for m in got]

    def ledger(self, account: str) -> list[dict]:
        ddb = self.r.client("dynamodb", self.r.security)
        return ddb.query(TableName="guardrail-ledger", KeyConditionExpression="account = :a",
                         ExpressionAttributeValues={":a": {"S": account}})["Items"]

    def logs(self, function: str) -> str:
        logs = self.r.client("logs", self.r.security)
        group = f"/aws/lambda/guardrail-{function}"
        text = []
        for stream in logs.describe_log_streams(logGroupName=group).get("logStreams", []):
            events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])["events"]
            text.extend(e["message"] for e in events)
        return "\n".join(text)

    def settled(self, expected: dict[str, int]) -> dict[str, int]:
        """The invocation counts once they reach `expected` (or after 30 s), then 1 s more, so a
        late extra delivery is counted too."""
        wait_until(lambda: all(self.invocations()[f] >= n for f, n in expected.items()))
        time.sleep(1.0)
        return self.invocations()


def drive(r):
    """Each function's main path, a replay, an event no rule routes, and a failing event."""
    t = Traffic(r)
    t.subscribe_alerts()
    base = t.invocations()
    r.check("no function has run before any event", not any(base.values()), json.dumps(base))

    tag_enforcer_main_path(r, t)


def tag_enforcer_main_path(r, t: Traffic):
    """An agent in the member account launches an instance tagged `Environment=prod` in a dev
    account: CloudTrail's event crosses by the forwarding rule, the tag enforcer sets the
    account's environment and the owner, agent-quarantine counts the call; each runs once."""
    ec2 = r.client("ec2", r.member)
    instance = ec2.run_instances(
        ImageId="ami-0abcdef1234567890", MinCount=1, MaxCount=1, InstanceType="t3.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "Name", "Value": "build-cache"}, {"Key": "Environment", "Value": "prod"}]}],
    )["Instances"][0]
    ids = {"i-0a1b2c3d4e5f60718": instance["InstanceId"]}
    for interface in instance.get("NetworkInterfaces", [])[:1]:
        ids["eni-0123456789abcdef0"] = interface["NetworkInterfaceId"]
    event = t.sample("tag-enforcer/run-instances.json", **ids)
    before = t.invocations()
    t.emit(r.member, event)
    counts = t.settled({"tag-enforcer": before["tag-enforcer"] + 1, "agent-quarantine": before["agent-quarantine"] + 1})
    ran = {f: counts[f] - before[f] for f in FUNCTIONS}
    r.check("an agent's RunInstances reaches tag-enforcer and agent-quarantine once each, account-baseline never",
            ran == {"account-baseline": 0, "tag-enforcer": 1, "agent-quarantine": 1}, json.dumps(ran))
    tags = wait_until(lambda: {
        tag["Key"]: tag["Value"]
        for tag in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance["InstanceId"]]}])["Tags"]
    }.get("Environment") == "dev" and {
        tag["Key"]: tag["Value"]
        for tag in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance["InstanceId"]]}])["Tags"]
    })
    r.check("tag-enforcer sets the instance's Environment to the account's (dev) and its Owner",
            bool(tags) and tags.get("Owner", "").endswith("assumed-role/agent-runner/run-7f3a"), json.dumps(tags or {}))
    alerts = wait_until(lambda: t.alerts_for(event["detail"]["eventID"]) or t.alerts_for(event["id"]))
    r.check("the fix is alerted, filterable by account, rule and action",
            any(a.get("account") == r.member and a.get("rule") == "tags" for a in alerts), json.dumps(t.alerts[-3:]))
    logged = t.logs("tag-enforcer")
    r.check("tag-enforcer's log says what it applied, in the function's log group",
            f'outcome="applied"' in logged and instance["InstanceId"] in logged, logged[-1500:])
