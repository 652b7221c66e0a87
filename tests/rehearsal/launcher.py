"""Starts ministack 1.5.33 on 127.0.0.1 for `make rehearse`, with what the rehearsal needs and it
lacks (the modules of `gaps/`, each written as AWS documents the behaviour, and each failing loudly
on a ministack other than the pinned one):

- `gaps/bus_policy.py`: the resource type `AWS::Events::EventBusPolicy`;
- `gaps/metric_alarms.py`: metric-math alarms (`AWS::CloudWatch::Alarm` with `Metrics`);
- `gaps/organizations.py`: Organizations' resource policy, and member accounts' calls answered
  from their organization as far as that policy delegates them;
- `gaps/delivery.py`: asynchronous Lambda targets (retries, `OnFailure`, `AWS/Lambda` metrics) and
  event-bus targets in other accounts, admitted by the receiving bus's policy;
- `gaps/service_events.py`: AWS services' events put on an account's default bus
  (`POST /_rehearsal/service-event`);
- `gaps/ec2_account_settings.py`: EC2's account settings (EBS encryption by default and its key,
  IMDS defaults, snapshot and AMI block public access);
- `gaps/s3control.py`: S3 Control's account-level Block Public Access;
- `gaps/tagging.py`: CloudWatch alarms in the Resource Groups Tagging API's `GetResources`;
- `gaps/cfn_conditions.py`: pseudo parameters (`AWS::AccountId`, `AWS::Region`) in conditions;
- `gaps/rule_state.py`: read-only CloudTrail events matched only by rules that ask for them;
- `gaps/scheduler.py`: Scheduler's context attributes in a target's input, and a schedule fired
  on demand (`POST /_rehearsal/fire-schedule`) as it fires when due.

Prints `PORT <n>` once the server answers, and serves until stdin reaches end of file, so that the
server ends with the rehearsal that started it, even a killed one.
"""

import argparse
import os
import socket
import sys
import threading
import time
import urllib.request

import gaps


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
    # The functions' processes inherit it: their SDK calls come back here, as a Lambda's reach AWS.
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    gaps.install()
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
