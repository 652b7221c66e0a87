"""`make rehearse`: Guardrail deployed as `make deploy` deploys it, into a local AWS emulator.

Starts ministack (tests/rehearsal/launcher.py) on a free loopback port, zips the test build's
x86_64 function binaries, and runs the Makefile's own `deploy-stack` (the `aws cloudformation
package` and `deploy` commands of `make deploy`, with its parameters) into the security account;
deploys `infra/management-role.yaml` in the management account and `infra/member-roles.yaml` and
`infra/forwarding.yaml` in a member account (plain stacks standing in for the StackSets); then
checks what the templates promise and upgrades the stack with a changed binary:

- every stack completes; the functions carry the template's environment, role and failure
  destination; every rule of the `guardrail` bus targets exactly one of Guardrail's functions;
  the bus admits the organization;
- deploying again with nothing changed changes nothing (and does not fail);
- deploying a changed binary updates the function in place: no resource is replaced and the
  table's and the ledger's items stay.

Prints one line per check and a summary; exits 1 if any check fails.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import boto3

import traffic
from traffic import FUNCTIONS, MANAGEMENT, REGION

ROOT = Path(__file__).resolve().parents[2]


class Rehearsal:
    def __init__(self, endpoint: str, work: Path):
        self.endpoint = endpoint
        self.work = work
        self.results: list[tuple[str, bool, str]] = []
        # The organization, made by `organization()`: its id, root, and the accounts' ids.
        self.org = self.root = self.security = self.member = self.dev_ou = ""
        # The policy file deployed with the functions (README, Deploy step 3), once written.
        self.policy: Path | None = None

    @property
    def bucket(self) -> str:
        return f"guardrail-artifacts-{self.security}-{REGION}"

    def env(self, account: str, region: str = REGION) -> dict:
        """The environment a deployer of `account` has: the emulator's endpoint, the account's key."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID=account,
            AWS_SECRET_ACCESS_KEY="rehearsal",
            AWS_DEFAULT_REGION=region,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        )
        return env

    def client(self, service: str, account: str, region: str = REGION, config=None):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=account,
            aws_secret_access_key="rehearsal",
            config=config,
        )

    def check(self, what: str, ok: bool, detail: str = ""):
        self.results.append((what, ok, detail))
        print(f"{'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail and not ok else ''}", flush=True)

    def run(self, what: str, command: list[str], account: str, region: str = REGION) -> bool:
        out = subprocess.run(command, cwd=ROOT, env=self.env(account, region), capture_output=True, text=True)
        ok = out.returncode == 0
        self.check(what, ok, (out.stdout + out.stderr)[-2000:])
        return ok

    def deploy_central(self, what: str, lambda_dir: Path, *extra: str) -> bool:
        policy = [f"POLICY={self.policy}", *extra] if self.policy else list(extra)
        return self.run(
            what,
            [
                "make", "--no-print-directory", "-s", "deploy-stack",
                f"ORG_ID={self.org}", f"MANAGEMENT_ACCOUNT={MANAGEMENT}", f"BUCKET={self.bucket}",
                f"LAMBDA_DIR={lambda_dir}", f"DEPLOY_DIR={self.work / 'deploy'}", *policy,
            ],
            self.security,
        )

    def deploy_plain(self, template: str, stack: str, account: str, parameters: dict, region: str = REGION) -> bool:
        overrides = [f"{k}={v}" for k, v in parameters.items()]
        return self.run(
            f"{template} deploys in account {account}" + (f" {region}" if region != REGION else ""),
            [
                "aws", "cloudformation", "deploy", "--template-file", f"infra/{template}", "--stack-name", stack,
                "--capabilities", "CAPABILITY_NAMED_IAM", "--no-fail-on-empty-changeset",
                "--parameter-overrides", *overrides,
            ],
            account,
            region,
        )

    def resources(self, stack: str, account: str) -> dict:
        cfn = self.client("cloudformation", account)
        listed = cfn.describe_stack_resources(StackName=stack)["StackResources"]
        return {r["LogicalResourceId"]: r.get("PhysicalResourceId") for r in listed}


def organization(r: Rehearsal):
    """The management account's organization: OUs security, dev and prod, the security account
    and a dev workload account, created and placed as Organizations would."""
    orgs = r.client("organizations", MANAGEMENT)
    described = orgs.describe_organization()["Organization"]
    r.org = described["Id"]
    r.root = orgs.list_roots()["Roots"][0]["Id"]
    ous = {
        name: orgs.create_organizational_unit(ParentId=r.root, Name=name)["OrganizationalUnit"]["Id"]
        for name in ("security", "dev", "prod")
    }
    r.dev_ou = ous["dev"]

    def account(name: str, ou: str) -> str:
        status = orgs.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]
        orgs.move_account(AccountId=status["AccountId"], SourceParentId=r.root, DestinationParentId=ous[ou])
        return status["AccountId"]

    r.security = account("security-tooling", "security")
    r.member = account("dev-workloads", "dev")
    print(f"rehearsal: organization {r.org}, security account {r.security}, member account {r.member}", flush=True)


def attach_scps(r: Rehearsal):
    """README, Deploy step 5: `make scps`, then create each SCP and attach it where it belongs."""
    if not r.run("make scps writes the SCPs as submitted", ["make", "--no-print-directory", "-s", "scps", f"SCP_OUT={r.work / 'scp'}"], MANAGEMENT):
        return
    orgs = r.client("organizations", MANAGEMENT)
    root = orgs.list_roots()["Roots"][0]["Id"]
    for path in sorted((r.work / "scp").glob("*.json")):
        target = r.security if path.name == "protect-security-account.json" else root
        name = f"guardrail-{path.stem}"
        created = r.run(
            f"aws organizations create-policy takes {path.name}",
            ["aws", "organizations", "create-policy", "--type", "SERVICE_CONTROL_POLICY", "--name", name,
             "--description", "Guardrail", "--content", f"file://{path}"],
            MANAGEMENT,
        )
        if created:
            policy = next(p["Id"] for p in orgs.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"] if p["Name"] == name)
            r.run(f"aws organizations attach-policy attaches {path.name} to {target}",
                  ["aws", "organizations", "attach-policy", "--policy-id", policy, "--target-id", target], MANAGEMENT)


def doctor(r: Rehearsal):
    """`guardrail doctor` on the deployed organization, as README Deploy step 0 runs it: from the
    management account, then from the security account."""
    def run(account: str) -> dict:
        out = subprocess.run([str(r.work / "bin" / "guardrail"), "doctor", "--security-account", r.security,
                              "--bucket", r.bucket, "--format", "json"],
                             cwd=ROOT, env=r.env(account), capture_output=True, text=True)
        try:
            report = json.loads(out.stdout)
        except json.JSONDecodeError:
            r.check(f"guardrail doctor runs in account {account}", False, (out.stdout + out.stderr)[-1500:])
            return {}
        found: dict = {}
        for c in report.get("checks", []):
            found.setdefault(c["check"], []).append(c["status"])
        return found

    management = run(MANAGEMENT)
    r.check("doctor, from the management account, finds the delegation, the SCPs and the policy's Regions in place",
            all(management.get(c) and set(management[c]) == {"ok"}
                for c in ("Organizations delegation", "SCP attached to the root", "SCP attached to the security account",
                          "the policy's Regions")),
            json.dumps(management))
    r.check("doctor names the policy's OUs this organization lacks (it has security, dev and prod)",
            management.get("the policy's OUs exist") == ["missing"], json.dumps(management))
    security = run(r.security)
    r.check("doctor, from the security account, finds the central stack, the bucket, the alert subscription and the kill switch in place",
            all(security.get(c) == ["ok"] for c in ("central stack", "artifact bucket", "alert subscriptions", "kill switch")),
            json.dumps(security))


def zip_functions(bin_dir: Path, out: Path, extra: str = "") -> Path:
    """One `bootstrap.zip` per function, as `cargo lambda build --output-format zip` lays them out."""
    for function in FUNCTIONS:
        binary = bin_dir / function
        if not binary.is_file():
            raise SystemExit(f"rehearse: {binary} is missing; build the workspace's tests first (cargo test --no-run)")
        target = out / function
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target / "bootstrap.zip", "w", zipfile.ZIP_DEFLATED) as z:
            info = zipfile.ZipInfo("bootstrap")
            info.external_attr = 0o755 << 16
            z.writestr(info, binary.read_bytes())
            if extra:
                z.writestr("VERSION", extra)
    return out


def start_emulator(work: Path):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "TMPDIR": str(work), "LOG_LEVEL": "WARNING"}
    log = open(work / "ministack.log", "w")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/rehearsal/launcher.py")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, text=True,
    )
    line = process.stdout.readline()
    if not line.startswith("PORT "):
        raise SystemExit(f"rehearse: the emulator did not start; see {work / 'ministack.log'}")
    return process, f"http://127.0.0.1:{int(line.split()[1])}"


def checks(r: Rehearsal, lambda_dir: Path):
    started = time.monotonic()
    organization(r)
    s3 = r.client("s3", r.security)
    s3.create_bucket(Bucket=r.bucket)
    if not r.deploy_central("make deploy-stack deploys infra/template.yaml in the security account", lambda_dir):
        return
    cfn = r.client("cloudformation", r.security)
    stack = cfn.describe_stacks(StackName="guardrail")["Stacks"][0]
    r.check("the central stack is CREATE_COMPLETE", stack["StackStatus"] == "CREATE_COMPLETE", stack["StackStatus"])
    packaged = (r.work / "deploy" / "template.packaged.yaml").stat().st_size
    uploaded = s3.list_objects_v2(Bucket=r.bucket, Prefix="templates/").get("KeyCount", 0)
    r.check(f"the packaged template ({packaged} bytes; a body over 51,200 must go by S3) went by the artifact bucket",
            uploaded > 0, f"{uploaded} objects under templates/")

    lam = r.client("lambda", r.security)
    for function in FUNCTIONS:
        name = f"guardrail-{function}"
        config = lam.get_function_configuration(FunctionName=name)
        env = config.get("Environment", {}).get("Variables", {})
        r.check(
            f"{name} runs as its own role with the table, ledger and topic",
            config["Role"].endswith(f":role/{name}-lambda")
            and env.get("GUARDRAIL_TABLE") == "guardrail"
            and env.get("GUARDRAIL_LEDGER_TABLE") == "guardrail-ledger"
            and env.get("GUARDRAIL_TOPIC_ARN", "").endswith(":guardrail-alerts"),
            json.dumps({"role": config["Role"], "env": env}),
        )
        configs = lam.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
        invoke = configs[0] if configs else {}
        destination = invoke.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination", "")
        r.check(
            f"{name}'s failed events go to its dead-letter queue after 2 retries",
            destination.endswith(f":{name}-dlq") and invoke.get("MaximumRetryAttempts") == 2,
            json.dumps(invoke, default=str),
        )

    events = r.client("events", r.security)
    rules = events.list_rules(EventBusName="guardrail")["Rules"]
    functions = {f"arn:aws:lambda:{REGION}:{r.security}:function:guardrail-{f}" for f in FUNCTIONS}
    for rule in rules:
        targets = events.list_targets_by_rule(EventBusName="guardrail", Rule=rule["Name"])["Targets"]
        r.check(
            f"rule {rule['Name']} of the guardrail bus invokes one of Guardrail's functions",
            len(targets) == 1 and targets[0]["Arn"] in functions,
            json.dumps(targets),
        )
    r.check("the guardrail bus has the central stack's seven rules", len(rules) == 7, str([x["Name"] for x in rules]))
    # A rule's dead-letter queue must let EventBridge in for that rule, or undelivered events are dropped.
    sqs = r.client("sqs", r.security)
    for rule in rules:
        target = events.list_targets_by_rule(EventBusName="guardrail", Rule=rule["Name"])["Targets"][0]
        queue = target.get("DeadLetterConfig", {}).get("Arn", "")
        url = sqs.get_queue_url(QueueName=queue.split(":")[-1])["QueueUrl"] if queue else ""
        policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"].get("Policy") or "{}") if url else {}
        admitted = [s for s in policy.get("Statement", []) if s.get("Principal", {}).get("Service") == "events.amazonaws.com"
                    and rule["Arn"] in s.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn", [])]
        r.check(f"rule {rule['Name']}'s dead-letter queue admits EventBridge for that rule", bool(admitted), json.dumps({"queue": queue, "policy": policy}))
    policy = json.loads(events.describe_event_bus(Name="guardrail").get("Policy") or "{}")
    r.check(
        "the guardrail bus admits the organization's accounts",
        any(s.get("Condition", {}).get("StringEquals", {}).get("aws:PrincipalOrgID") == r.org for s in policy.get("Statement", [])),
        json.dumps(policy),
    )
    bus_arn = f"arn:aws:events:{REGION}:{r.security}:event-bus/guardrail"

    r.deploy_plain(
        "management-role.yaml", "guardrail-management", MANAGEMENT,
        {
            "SecurityAccountId": r.security, "OrganizationId": r.org, "CentralBusArn": bus_arn, "RootId": r.root,
            "PlacementOuArns": f"arn:aws:organizations::{MANAGEMENT}:ou/{r.org}/{r.dev_ou}",
        },
    )
    delegation = r.client("organizations", MANAGEMENT).describe_resource_policy()["ResourcePolicy"]["Content"]
    r.check(
        "the management account delegates Organizations reads to the security account",
        "GuardrailReadsAccountsAndOrganizationalUnits" in delegation and f"arn:aws:iam::{r.security}:root" in delegation,
        delegation,
    )
    # README, Deploy step 3: baseline.management_role set to the stack's ManagementRoleArn, and
    # step 2 again, with the policy in the functions' packages.
    outputs = r.client("cloudformation", MANAGEMENT).describe_stacks(StackName="guardrail-management")["Stacks"][0].get("Outputs", [])
    role = next((o["OutputValue"] for o in outputs if o["OutputKey"] == "ManagementRoleArn"), "")
    r.check("the management stack outputs ManagementRoleArn", role.endswith(":role/guardrail-management"), json.dumps(outputs))
    r.policy = r.work / "policy.toml"
    r.policy.write_text((ROOT / "infra/policy.toml").read_text().replace('management_role = ""', f'management_role = "{role}"'))
    if r.deploy_central("make deploy-stack POLICY=... puts the policy with the management role into the functions", lambda_dir):
        env = lam.get_function_configuration(FunctionName="guardrail-account-baseline").get("Environment", {}).get("Variables", {})
        r.check("the functions read the deployed policy file", env.get("GUARDRAIL_POLICY") == "policy.toml", json.dumps(env))
    attach_scps(r)
    r.deploy_plain("member-roles.yaml", "StackSet-guardrail-member-roles", r.member,
                   {"SecurityAccountId": r.security, "IncidentResponseRoleName": "guardrail-oncall"})
    r.deploy_plain("forwarding.yaml", "StackSet-guardrail-forwarding", r.member,
                   {"CentralBusArn": bus_arn, "SecurityAccountId": r.security, "CentralRegion": REGION})
    forwarded = r.client("events", r.member).list_targets_by_rule(Rule="guardrail-api-calls")["Targets"]
    r.check(
        "the member account's forwarding rules send to the central bus",
        [t["Arn"] for t in forwarded] == [bus_arn] and forwarded[0].get("RoleArn", "").endswith(f":role/guardrail-forwarding-{REGION}"),
        json.dumps(forwarded),
    )

    traffic.drive(r)
    doctor(r)

    # An upgrade: nothing changed, then a changed binary. No resource replaced, no data lost.
    before = r.resources("guardrail", r.security)
    ddb = r.client("dynamodb", r.security)
    ddb.put_item(TableName="guardrail", Item={"pk": {"S": "replay#tag-enforcer#rehearsal"}, "state": {"S": "Completed"}})
    ddb.put_item(TableName="guardrail-ledger", Item={"account": {"S": r.member}, "entry": {"S": "rehearsal"}})
    deployed = cfn.describe_stacks(StackName="guardrail")["Stacks"][0]
    if r.deploy_central("make deploy-stack again with nothing changed succeeds", lambda_dir):
        again = cfn.describe_stacks(StackName="guardrail")["Stacks"][0]
        r.check("deploying again with nothing changed changes nothing",
                (again["StackStatus"], again.get("LastUpdatedTime")) == (deployed["StackStatus"], deployed.get("LastUpdatedTime")),
                f"{deployed['StackStatus']} {deployed.get('LastUpdatedTime')} -> {again['StackStatus']} {again.get('LastUpdatedTime')}")
    code = lam.get_function(FunctionName="guardrail-tag-enforcer")["Configuration"]["CodeSha256"]
    changed = zip_functions(Path(r.work / "bin"), r.work / "lambda-2", extra="rehearsal upgrade")
    if r.deploy_central("make deploy-stack deploys a changed binary", changed):
        after = r.resources("guardrail", r.security)
        replaced = sorted(k for k in before if after.get(k) != before[k])
        r.check("the upgrade replaces no resource", not replaced, ", ".join(replaced))
        r.check(
            "the upgrade updates the function's code",
            lam.get_function(FunctionName="guardrail-tag-enforcer")["Configuration"]["CodeSha256"] != code,
        )
        status = cfn.describe_stacks(StackName="guardrail")["Stacks"][0]["StackStatus"]
        r.check("the central stack is UPDATE_COMPLETE", status == "UPDATE_COMPLETE", status)
    kept = ddb.get_item(TableName="guardrail", Key={"pk": {"S": "replay#tag-enforcer#rehearsal"}}).get("Item")
    entry = ddb.get_item(TableName="guardrail-ledger", Key={"account": {"S": r.member}, "entry": {"S": "rehearsal"}}).get("Item")
    r.check("the table and the ledger keep their items through the upgrade", bool(kept) and bool(entry))
    print(f"rehearsal: deployed, checked and upgraded in {time.monotonic() - started:.1f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", type=Path, required=True, help="the test build's binaries (CARGO_TARGET_DIR/debug)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (emulator log, templates)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="guardrail-rehearsal-"))
    # A copy of the binaries: a later cargo build must not change what one rehearsal deploys.
    (work / "bin").mkdir()
    for binary in [*FUNCTIONS, "guardrail"]:
        source = args.bin_dir / binary
        if source.is_file():
            shutil.copy2(source, work / "bin" / binary)
    lambda_dir = zip_functions(work / "bin", work / "lambda")
    process, endpoint = start_emulator(work)
    r = Rehearsal(endpoint, work)
    try:
        checks(r, lambda_dir)
    except Exception as e:  # an AWS call the rehearsal makes failed: a failed check, with why
        r.check("the rehearsal ran to its end", False, f"{type(e).__name__}: {e}")
    finally:
        process.stdin.close()
        process.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    failed = [w for w, ok, _ in r.results if not ok]
    print(f"rehearsal: {len(r.results) - len(failed)} of {len(r.results)} checks hold"
          + (f"; work directory {work}" if args.keep else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
