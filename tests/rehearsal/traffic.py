"""Real traffic through the deployed stack: AWS services' events put where AWS puts them (CloudTrail
calls on a member account's default bus, GuardDuty findings on the security account's, Organizations
events on the management account's), routed by the templates' own rules and forwarding, to the
real function binaries; then what the functions did, what they alerted, what they recorded, what
they logged, and how often each ran (the `AWS/Lambda` `Invocations` metric)."""

import json
import time
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_MEMBER = "111122223333"
SAMPLE_SECURITY = "999988887777"
FUNCTIONS = ["account-baseline", "tag-enforcer", "agent-quarantine"]
MANAGEMENT = "111111111111"
REGION = "us-east-1"


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

    def fire_schedule(self, name: str) -> str:
        """The security account's schedule `name` fires now, as Scheduler fires it when due, with its
        own input (tests/rehearsal/gaps/scheduler.py); answers the occurrence's time."""
        body = json.dumps({"account": self.r.security, "region": "us-east-1", "name": name}).encode()
        request = urllib.request.Request(f"{self.r.endpoint}/_rehearsal/fire-schedule", data=body, method="POST",
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())["ScheduledTime"]

    def sample(self, path: str, ids: dict[str, str]) -> dict:
        """A sample event of `events/`, fresh, with new event ids, every `old: new` of `ids`
        replaced, then the samples' member and security accounts by this organization's."""
        text = (ROOT / "events" / path).read_text()
        for old, new in ids.items():
            text = text.replace(old, new)
        text = text.replace(SAMPLE_MEMBER, self.r.member).replace(SAMPLE_SECURITY, self.r.security)
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

    def s3control(self, account: str):
        """An S3 Control client of `account`. S3 Control puts the account id in front of the
        endpoint's host, and no resolver answers `<account>.127.0.0.1`: this one sends to the
        endpoint itself (the functions' client does the same, shared/src/aws/s3control.rs)."""
        client = self.r.client("s3control", account)
        host = urllib.parse.urlsplit(self.r.endpoint).netloc

        def to_endpoint(request, **_):
            parts = urllib.parse.urlsplit(request.url)
            request.url = urllib.parse.urlunsplit(parts._replace(netloc=host))

        client.meta.events.register("before-sign.s3-control.*", to_endpoint)
        return client

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

    def alerts_about(self, event: dict) -> list[dict]:
        """The alerts about `event`, by its EventBridge or its CloudTrail id."""
        ids = {event["id"], event["detail"].get("eventID")}
        return [a for a in self.read_alerts() if a.get("event_id") in ids]

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
    """Each function's main path, a replay, an event no rule routes, the scheduled sweeps, and a
    failing event."""
    t = Traffic(r)
    t.subscribe_alerts()
    base = t.invocations()
    r.check("no function has run before any event", not any(base.values()), json.dumps(base))

    event = tag_enforcer_main_path(r, t)
    replay(r, t, event)
    unrouted(r, t)
    quarantine_on_finding(r, t)
    finding_in_another_region(r, t)
    quarantine_on_alarm(r, t)
    quarantine_on_call_rate(r, t)
    account = baseline_on_new_account(r, t)
    scheduled_sweeps(r, t, account)
    baseline_drift(r, t)
    agents_reads(r, t)
    outside_the_organization(r, t)
    failing_event(r, t)
    totals = t.invocations()
    print(f"rehearsal: invocations {json.dumps(totals)}", flush=True)


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
    event = t.sample("tag-enforcer/run-instances.json", ids)
    before = t.invocations()
    t.emit(r.member, event)
    counts = t.settled({"tag-enforcer": before["tag-enforcer"] + 1, "agent-quarantine": before["agent-quarantine"] + 1})
    ran = {f: counts[f] - before[f] for f in FUNCTIONS}
    r.check("an agent's RunInstances reaches tag-enforcer and agent-quarantine once each, account-baseline never",
            ran == {"account-baseline": 0, "tag-enforcer": 1, "agent-quarantine": 1}, json.dumps(ran))
    def instance_tags() -> dict:
        listed = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance["InstanceId"]]}])["Tags"]
        return {tag["Key"]: tag["Value"] for tag in listed}

    tags = wait_until(lambda: (lambda now: now if now.get("Environment") == "dev" else None)(instance_tags()))
    r.check("tag-enforcer sets the instance's Environment to the account's (dev) and its Owner",
            bool(tags) and tags.get("Owner", "").endswith("assumed-role/agent-runner/run-7f3a"), json.dumps(tags or {}))
    alerts = wait_until(lambda: t.alerts_about(event))
    r.check("the fix is alerted, filterable by account, rule and action",
            any(a.get("account") == r.member and a.get("rule") == "tags" for a in alerts), json.dumps(t.alerts[-3:]))
    logged = t.logs("tag-enforcer")
    r.check("tag-enforcer's log says what it applied, in the function's log group",
            f'outcome="applied"' in logged and instance["InstanceId"] in logged, logged[-1500:])
    return event


def agent_role(iam, name: str):
    """A role under the agents' path (/agents/), which the policy counts as an agent."""
    iam.create_role(RoleName=name, Path="/agents/", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))


def quarantined(iam, name: str) -> dict:
    """The role's tags once it carries `guardrail:quarantine` (or after 30 s, {})."""
    def tags() -> dict:
        return {x["Key"]: x["Value"] for x in iam.list_role_tags(RoleName=name)["Tags"]}

    return wait_until(lambda: (lambda now: now if "guardrail:quarantine" in now else None)(tags())) or {}


def ran_since(t: Traffic, before: dict[str, int], expected: dict[str, int]) -> dict[str, int]:
    """How often each function ran since `before`, once `expected` more runs have happened."""
    counts = t.settled({f: before[f] + n for f, n in expected.items() if n})
    return {f: counts[f] - before[f] for f in FUNCTIONS}


def replay(r, t: Traffic, event: dict):
    """EventBridge delivers at least once: the same event again runs the functions but acts
    and alerts no more."""
    before = t.invocations()
    ledger = len(t.ledger(r.member))
    alerted = len(t.alerts_about(event))
    t.emit(r.member, event)
    ran = ran_since(t, before, {"tag-enforcer": 1, "agent-quarantine": 1})
    r.check("the same event again runs each function once more", ran == {"account-baseline": 0, "tag-enforcer": 1, "agent-quarantine": 1}, json.dumps(ran))
    logged = wait_until(lambda: t.logs("tag-enforcer").count('outcome="duplicate"'))
    r.check("tag-enforcer knows the replay for a duplicate", logged == 1, f"{logged} duplicates logged")
    alerts = t.alerts_about(event)
    r.check("the replay adds no alert and no ledger entry",
            len(alerts) == alerted and len(t.ledger(r.member)) == ledger, f"{len(alerts)} alerts, ledger {ledger} -> {len(t.ledger(r.member))}")


def unrouted(r, t: Traffic):
    """A person's read-only call is no function's business: no rule forwards or routes it."""
    before = t.invocations()
    event = t.sample("tag-enforcer/run-instances.json", {})
    event["detail"].update(eventName="DescribeInstances", requestParameters={}, responseElements=None)
    event["detail"]["userIdentity"] = {"type": "IAMUser", "arn": f"arn:aws:iam::{r.member}:user/alice",
                                       "accountId": r.member, "userName": "alice"}
    t.emit(r.member, event)
    time.sleep(2.0)
    after = t.invocations()
    r.check("a person's DescribeInstances reaches no function", after == before, f"{before} -> {after}")


def quarantine_on_finding(r, t: Traffic):
    """GuardDuty reports the agent role's credentials used from outside AWS: the finding on the
    security account's default bus goes to the Guardrail bus, and agent-quarantine isolates the
    role in the member account."""
    iam = r.client("iam", r.member)
    agent_role(iam, "agent-runner")
    before = t.invocations()
    event = t.sample("agent-quarantine/finding-credential-exfiltration.json", {})
    t.emit(r.security, event)
    ran = ran_since(t, before, {"agent-quarantine": 1})
    r.check("a GuardDuty finding reaches agent-quarantine once, and nothing else",
            ran == {"account-baseline": 0, "tag-enforcer": 0, "agent-quarantine": 1}, json.dumps(ran))
    # The policy's response to stolen credentials is revoke-sessions: every session issued before
    # now is denied by an inline policy, and the role is marked with the response and the trigger.
    inline = wait_until(lambda: iam.list_role_policies(RoleName="agent-runner")["PolicyNames"])
    documents = [iam.get_role_policy(RoleName="agent-runner", PolicyName=n)["PolicyDocument"] for n in inline]
    tags = {x["Key"]: x["Value"] for x in iam.list_role_tags(RoleName="agent-runner")["Tags"]}
    r.check("agent-quarantine revokes the role's sessions and marks it with the response and the finding",
            any("aws:TokenIssueTime" in json.dumps(d) for d in documents)
            and tags.get("guardrail:quarantine", "").startswith("revoke-sessions ")
            and tags["guardrail:quarantine"].endswith("guardduty:a4c9e2f07b1d4e6f8a2b3c4d5e6f7081"),
            json.dumps({"inline": inline, "documents": documents, "tags": tags}, default=str)[:1500])
    alerts = wait_until(lambda: [a for a in t.read_alerts() if a.get("rule") == "quarantine"])
    r.check("the quarantine is alerted", bool(alerts), json.dumps(t.alerts[-3:]))


def finding_in_another_region(r, t: Traffic):
    """GuardDuty's delegated administrator (the security account) gets us-west-2's findings on
    its us-west-2 bus: forwarding.yaml, deployed there, sends them to the Guardrail bus in
    us-east-1, and the central stack's own rule in us-east-1 is not doubled."""
    bus_arn = f"arn:aws:events:{REGION}:{r.security}:event-bus/guardrail"
    if not r.deploy_plain("forwarding.yaml", "StackSet-guardrail-forwarding", r.security,
                          {"CentralBusArn": bus_arn, "SecurityAccountId": r.security, "CentralRegion": REGION}, "us-west-2"):
        return
    here = r.client("events", r.security, "us-west-2").list_rules()["Rules"]
    home = [x["Name"] for x in r.client("events", r.security).list_rules()["Rules"]]
    r.check("the security account forwards findings from us-west-2 with forwarding.yaml's rule, and from us-east-1 with the central stack's only",
            "guardrail-findings-to-bus" in [x["Name"] for x in here] and home.count("guardrail-findings-to-bus") == 1,
            json.dumps({"us-west-2": [x["Name"] for x in here], REGION: home}))
    iam = r.client("iam", r.member)
    agent_role(iam, "agent-west")
    event = t.sample("agent-quarantine/finding-credential-exfiltration.json", {"agent-runner": "agent-west", "a4c9e2f07b1d4e6f8a2b3c4d5e6f7081": "b5d0f3a18c2e5f7091b3c4d5e6f70812"})
    event["region"] = "us-west-2"
    event["detail"]["region"] = "us-west-2"
    before = t.invocations()
    t.emit(r.security, event)
    ran = ran_since(t, before, {"agent-quarantine": 1})
    r.check("a GuardDuty finding in us-west-2 reaches agent-quarantine once", ran == {"account-baseline": 0, "tag-enforcer": 0, "agent-quarantine": 1},
            json.dumps(ran))
    tags = quarantined(iam, "agent-west")
    r.check("and the role it names is contained", tags.get("guardrail:quarantine", "").startswith("revoke-sessions "), json.dumps(tags))


def quarantine_on_alarm(r, t: Traffic):
    """An alarm in the member account, tagged with the agent role it watches, enters ALARM: the
    member's forwarding rule for alarms sends it to the Guardrail bus and agent-quarantine isolates
    the role it names."""
    iam = r.client("iam", r.member)
    agent_role(iam, "agent-batch")
    r.client("cloudwatch", r.member).put_metric_alarm(
        AlarmName="agent-batch-tokens", Namespace="AWS/Bedrock", MetricName="OutputTokenCount", Statistic="Sum",
        Period=300, EvaluationPeriods=1, Threshold=1_000_000, ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": "guardrail:agent-role", "Value": "agent-batch"}])
    event = t.sample("agent-quarantine/alarm-state-change.json", {"agent-runner-bedrock-tokens": "agent-batch-tokens"})
    event["detail"]["state"]["timestamp"] = now()
    before = t.invocations()
    t.emit(r.member, event)
    ran = ran_since(t, before, {"agent-quarantine": 1})
    r.check("an alarm entering ALARM in the member account reaches agent-quarantine once, and nothing else",
            ran == {"account-baseline": 0, "tag-enforcer": 0, "agent-quarantine": 1}, json.dumps(ran))
    tags = quarantined(iam, "agent-batch")
    inline = iam.list_role_policies(RoleName="agent-batch")["PolicyNames"]
    r.check("agent-quarantine isolates the role the alarm names, and says which alarm",
            tags.get("guardrail:quarantine", "").startswith("isolate ") and " alarm:" in tags["guardrail:quarantine"]
            and "agent-batch-tokens" in tags["guardrail:quarantine"]
            and bool(inline), json.dumps({"tags": tags, "inline": inline, "alerts": t.alerts_about(event)})[:3000])


def quarantine_on_call_rate(r, t: Traffic):
    """An agent role (`/agents/planner`) creates access keys faster than its budget allows
    (infra/policy.toml: two `CreateAccessKey` a minute): each call crosses by the forwarding rule,
    agent-quarantine counts it, and the third isolates the role."""
    iam = r.client("iam", r.member)
    agent_role(iam, "planner")
    before = t.invocations()
    for n in range(3):
        event = t.sample("agent-quarantine/agent-run-instances.json", {})
        event["source"] = "aws.iam"
        event["detail"].update(eventSource="iam.amazonaws.com", eventName="CreateAccessKey",
                               requestParameters={"userName": f"build-bot-{n}"}, responseElements=None)
        t.emit(r.member, event)
        if n < 2:  # counted before the next: the budget is per call, in order
            ran_since(t, before, {"agent-quarantine": n + 1})
    ran = ran_since(t, before, {"agent-quarantine": 3})
    r.check("an agent's three CreateAccessKey calls reach agent-quarantine three times, and nothing else",
            ran == {"account-baseline": 0, "tag-enforcer": 0, "agent-quarantine": 3}, json.dumps(ran))
    tags = quarantined(iam, "planner")
    inline = iam.list_role_policies(RoleName="planner")["PolicyNames"]
    r.check("the call over the budget isolates the agent role",
            tags.get("guardrail:quarantine", "").startswith("isolate ") and " rate:" in tags["guardrail:quarantine"] and bool(inline),
            json.dumps({"tags": tags, "inline": inline, "alerts": t.alerts_about(event)})[:3000])


def baseline_on_new_account(r, t: Traffic):
    """Organizations reports a new account on the management account's default bus; the
    management stack's rule forwards it, and account-baseline baselines the account through the
    management role and the account's bootstrap role (README, Deploy step 3), in one run."""
    orgs = r.client("organizations", MANAGEMENT)
    created = orgs.create_account(Email="dev-payments@example.com", AccountName="dev-payments")["CreateAccountStatus"]
    account = created["AccountId"]
    before = t.invocations()
    event = t.sample("account-baseline/create-account-result.json", {"111122223333": MANAGEMENT, "444455556666": account})
    t.emit(MANAGEMENT, event)
    ran = ran_since(t, before, {"account-baseline": 1})
    r.check("CreateAccountResult reaches account-baseline once and nothing else",
            ran == {"account-baseline": 1, "tag-enforcer": 0, "agent-quarantine": 0}, json.dumps(ran))
    tags = {x["Key"]: x["Value"] for x in orgs.list_tags_for_resource(ResourceId=account)["Tags"]}
    iam = r.client("iam", account)
    aliases = iam.list_account_aliases()["AccountAliases"]
    policy = iam.get_account_password_policy()["PasswordPolicy"]
    r.check("account-baseline tags the account and sets its alias and password policy",
            tags.get("Environment") == "dev" and aliases == ["dev-payments"] and policy.get("MinimumPasswordLength", 0) >= 14,
            json.dumps({"tags": tags, "aliases": aliases, "policy": policy}, default=str))
    # infra/policy.toml baselines us-east-1 and us-west-2.
    for region in ("us-east-1", "us-west-2"):
        ec2 = r.client("ec2", account, region)
        found = {
            "ebs encryption": ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"],
            "imds": ec2.get_instance_metadata_defaults()["AccountLevel"],
            "snapshots": ec2.get_snapshot_block_public_access_state()["State"],
            "images": ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"],
            "default vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]],
        }
        r.check(f"in {region} it turns on EBS encryption, requires IMDSv2, blocks snapshot and AMI sharing, deletes the default VPC",
                found["ebs encryption"] is True and found["imds"].get("HttpTokens") == "required"
                and found["imds"].get("HttpPutResponseHopLimit") == 2 and found["snapshots"] == "block-all-sharing"
                and found["images"] == "block-new-sharing" and not found["default vpcs"], json.dumps(found, default=str))
    block = t.s3control(account).get_public_access_block(AccountId=account)["PublicAccessBlockConfiguration"]
    r.check("it blocks S3 public access for the whole account", all(block.values()) and len(block) == 4, json.dumps(block))
    alerts = [a for a in t.read_alerts() if a.get("rule") == "baseline" and a.get("account") == account]
    done = [line for a in alerts for line in json.loads(a["text"]).get("done", [])]
    r.check("its alert lists every step done and none failed", bool(done) and not any(line.startswith("FAILED") for line in done),
            json.dumps(done)[:2000])
    r.check("nothing of it is dead-lettered", not t.dead_letters("account-baseline"))
    return account


def scheduled_sweeps(r, t: Traffic, baselined: str):
    """The daily sweeps, each fired by its own schedule with the template's input, find what no
    event reported: a bucket tagged `Environment=prod` in the dev member account before Guardrail
    watched, and EBS encryption turned off in the new account's us-west-2. Each function runs once,
    fixes its drift and sends one summary alert."""
    s3 = r.client("s3", r.member)
    bucket = f"dev-old-reports-{r.member}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [
        {"Key": "Environment", "Value": "prod"}, {"Key": "Owner", "Value": "team-reports"}]})
    r.client("ec2", baselined, "us-west-2").disable_ebs_encryption_by_default()
    before = t.invocations()
    times = {name: t.fire_schedule(f"guardrail-{name}-sweep") for name in ("account-baseline", "tag-enforcer")}
    ran = ran_since(t, before, {"account-baseline": 1, "tag-enforcer": 1})
    r.check("each sweep's schedule runs its function once", ran == {"account-baseline": 1, "tag-enforcer": 1, "agent-quarantine": 0},
            json.dumps(ran))
    summaries = wait_until(lambda: (lambda got: got if len(got) == 2 else None)(
        [a for a in t.read_alerts() if a.get("action") == "swept"]), timeout=30) or []
    by_rule = {a.get("rule"): a for a in summaries}
    for rule, alert in sorted(by_rule.items()):
        print(f"rehearsal: {rule} sweep: {json.loads(alert['text']).get('title', '')}", flush=True)
    r.check("each sweep ends with one summary alert, named by the schedule's time",
            sorted(by_rule) == ["baseline", "tags"]
            and all(a.get("event_id") == f"scheduled@{times[f]}" for a, f in ((by_rule.get("baseline", {}), "account-baseline"),
                                                                             (by_rule.get("tags", {}), "tag-enforcer"))),
            json.dumps({"times": times, "alerts": summaries})[:2000])
    tags = wait_until(lambda: (lambda now: now if now.get("Environment") == "dev" else None)(
        {x["Key"]: x["Value"] for x in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}))
    r.check("the tag sweep sets the old bucket's Environment to the account's (dev)", bool(tags), bucket)
    encrypted = r.client("ec2", baselined, "us-west-2").get_ebs_encryption_by_default()["EbsEncryptionByDefault"]
    r.check("the baseline sweep turns EBS encryption back on in the new account's us-west-2", encrypted is True)


def baseline_drift(r, t: Traffic):
    """A person in the member account turns EBS encryption by default off: the call crosses by the
    forwarding rule and account-baseline turns it back on (the dev environment's baseline mode is
    fix)."""
    ec2 = r.client("ec2", r.member)
    ec2.disable_ebs_encryption_by_default()
    before = t.invocations()
    t.emit(r.member, t.sample("account-baseline/disable-ebs-encryption-by-default.json", {"444455556666": r.member}))
    ran = ran_since(t, before, {"account-baseline": 1})
    r.check("a person's DisableEbsEncryptionByDefault reaches account-baseline once, and nothing else",
            ran == {"account-baseline": 1, "tag-enforcer": 0, "agent-quarantine": 0}, json.dumps(ran))
    on = wait_until(lambda: ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"])
    r.check("account-baseline turns EBS encryption by default back on", on is True)


def agents_reads(r, t: Traffic):
    """An agent's read-only call (DescribeInstances) is a read-only management event: the
    forwarding and calls rules, ENABLED, skip it; redeployed with CountReadOnlyCalls=true
    (ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS), they carry it and agent-quarantine counts it."""
    def describe() -> dict:
        event = t.sample("agent-quarantine/agent-run-instances.json", {})
        event["detail"].update(eventName="DescribeInstances", readOnly=True, requestParameters={}, responseElements=None)
        return event

    before = t.invocations()
    t.emit(r.member, describe())
    time.sleep(2.0)
    after = t.invocations()
    r.check("an agent's read-only call reaches no function by default", after == before, f"{before} -> {after}")
    bus_arn = f"arn:aws:events:{REGION}:{r.security}:event-bus/guardrail"
    if not (r.deploy_plain("forwarding.yaml", "StackSet-guardrail-forwarding", r.member,
                           {"CentralBusArn": bus_arn, "SecurityAccountId": r.security, "CentralRegion": REGION,
                            "CountReadOnlyCalls": "true"})
            and r.deploy_central("make deploy-stack COUNT_READ_ONLY_CALLS=true", r.work / "lambda", "COUNT_READ_ONLY_CALLS=true")):
        return
    before = t.invocations()
    t.emit(r.member, describe())
    ran = ran_since(t, before, {"agent-quarantine": 1})
    r.check("with CountReadOnlyCalls it reaches agent-quarantine once, and nothing else",
            ran == {"account-baseline": 0, "tag-enforcer": 0, "agent-quarantine": 1}, json.dumps(ran))
    logged = t.logs("agent-quarantine")
    r.check("agent-quarantine counts the read against the agent's budget", "ec2:DescribeInstances" in logged, logged[-800:])
    # Back as deployed, for the checks that follow.
    r.deploy_plain("forwarding.yaml", "StackSet-guardrail-forwarding", r.member,
                   {"CentralBusArn": bus_arn, "SecurityAccountId": r.security, "CentralRegion": REGION})
    r.deploy_central("make deploy-stack COUNT_READ_ONLY_CALLS=false", r.work / "lambda")


def outside_the_organization(r, t: Traffic):
    """An account outside the organization deploys the forwarding template pointing at the
    Guardrail bus: the bus's policy admits only the organization, so its events reach no function."""
    outsider = "222233334444"
    bus_arn = f"arn:aws:events:us-east-1:{r.security}:event-bus/guardrail"
    if not r.deploy_plain("forwarding.yaml", "guardrail-forwarding", outsider, {"CentralBusArn": bus_arn}):
        return
    ec2 = r.client("ec2", outsider)
    instance = ec2.run_instances(ImageId="ami-0abcdef1234567890", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                 TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Environment", "Value": "prod"}]}],
                                 )["Instances"][0]
    event = t.sample("tag-enforcer/run-instances.json", {"i-0a1b2c3d4e5f60718": instance["InstanceId"]})
    text = json.dumps(event).replace(r.member, outsider)
    before = t.invocations()
    t.emit(outsider, json.loads(text))
    time.sleep(2.0)
    after = t.invocations()
    # Not vacuous: the outsider's rule matched and EventBridge tried the bus, whose policy refused.
    refused = f"the bus's policy does not allow account {outsider}" in (r.work / "ministack.log").read_text()
    r.check("an agent's call in an account outside the organization matches its forwarding rule, and the bus refuses it",
            refused and after == before, f"refusal logged: {refused}; invocations {before} -> {after}")


def failing_event(r, t: Traffic):
    """An event the function cannot act on (the bucket it names is gone): three attempts, one
    failure alert, and the event in the dead-letter queue with its request context."""
    before = t.invocations()
    event = t.sample("tag-enforcer/create-bucket.json", {"dev-build-cache-": "gone-"})
    identity = event["detail"]["userIdentity"]
    identity.update(type="IAMUser", arn=f"arn:aws:iam::{r.member}:user/alice", userName="alice")
    identity.pop("sessionContext", None)
    t.emit(r.member, event)
    letters = wait_until(lambda: t.dead_letters("tag-enforcer"), timeout=30)
    ran = {f: t.invocations()[f] - before[f] for f in FUNCTIONS}
    r.check("a failing event is tried three times", ran == {"account-baseline": 0, "tag-enforcer": 3, "agent-quarantine": 0}, json.dumps(ran))
    r.check("then lands in tag-enforcer's dead-letter queue with the event",
            len(letters) == 1 and letters[0].get("requestPayload", {}).get("id") == event["id"]
            and letters[0].get("requestContext", {}).get("condition") == "RetriesExhausted",
            json.dumps(letters)[:1500])
    alerts = t.alerts_about(event)
    r.check("its failure is alerted once", len(alerts) == 1 and alerts[0].get("action") == "failed", json.dumps(alerts)[:1500])
