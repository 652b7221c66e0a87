"""EventBridge's delivery to a rule's targets, where ministack 1.5.33 differs from AWS:

- A Lambda target is invoked asynchronously (Lambda Developer Guide, "How Lambda handles errors
  and retries with asynchronous invocation"): when the function returns an error, Lambda retries
  it up to the function's `MaximumRetryAttempts` (two by default), then sends an invocation record
  (`requestContext`, `requestPayload`, `responseContext`, `responsePayload`) to its `OnFailure`
  destination. AWS waits about one and then two minutes between attempts; here 0.5 s and 1 s, the
  same shape scaled down. Every attempt counts in the `AWS/Lambda` metrics `Invocations` and, when
  it failed, `Errors`, by `FunctionName` (Lambda Developer Guide, "Types of metrics for Lambda
  functions"). ministack ran the function once and dropped a failure.
- A target may be an event bus of another account (EventBridge User Guide, "Sending and receiving
  events between AWS accounts"): the event is delivered when the receiving bus's resource policy
  allows the sending account `events:PutEvents`, keeps its `account`, `source` and `id`, and the
  receiving bus's rules match it. A statement conditioned on `aws:PrincipalOrgID` allows the
  accounts of that organization; any other condition allows nothing here. A bus of the same
  account in another Region receives it too ("Sending and receiving events between AWS
  Regions"). ministack delivered only within one account and Region.
"""

import json
import logging
import threading
import time

from . import require, statements_naming
from .organizations import organization_of

RETRY_DELAYS = (0.5, 1.0)
logger = logging.getLogger("rehearsal")


def admits(policy: dict | None, sender: str) -> bool:
    """Whether a bus's resource policy allows `sender`'s account `events:PutEvents`."""
    allowed = False
    for s in statements_naming(policy, sender, "events:PutEvents"):
        if s.get("Effect") == "Deny":
            return False
        condition = s.get("Condition") or {}
        if condition:
            org = organization_of(sender)
            wanted = condition.get("StringEquals", {}).get("aws:PrincipalOrgID") if list(condition) == ["StringEquals"] else None
            if wanted is None or len(condition["StringEquals"]) != 1 or org is None or org[1] != wanted:
                continue
        allowed = allowed or s.get("Effect") == "Allow"
    return allowed


def install():
    from ministack.core.responses import get_account_id, get_region, request_scope
    from ministack.services import cloudwatch, eventbridge, lambda_svc

    same_account_bus = require(eventbridge, "_dispatch_to_event_bus")
    require(eventbridge, "_dispatch_to_lambda")
    buses = require(eventbridge, "_event_buses")
    policies = require(eventbridge, "_event_bus_policies")
    require(eventbridge, "_dispatch_event")  # looked up when used: gaps/rule_state.py replaces it
    archive_event = require(eventbridge, "_archive_event")
    rule_key = require(eventbridge, "_rule_key")
    find_function = require(lambda_svc, "_get_func_record_for_ref")
    execution_record = require(lambda_svc, "_execution_record_for_config")
    execute = require(lambda_svc, "_execute_function")
    scope_of = require(lambda_svc, "_account_region_from_function_config")
    route_failure = require(lambda_svc, "_route_async_failure")
    record_metric = require(cloudwatch, "record_metric")

    def to_bus(spec, event, rule, event_path, target_input_payload=None):
        sender = get_account_id()
        if spec.account_id == sender and spec.region == get_region():
            return same_account_bus(spec, event, rule, event_path, target_input_payload)
        key = f"{sender}/{rule_key(rule.get('Name'), rule.get('EventBusName', 'default'))}"
        if key in event_path:
            return
        with request_scope(spec.account_id, spec.region):
            bus = spec.resource.split("/", 1)[1]
            if bus not in buses:
                logger.warning("EventBridge -> %s: no such bus", spec)
                return
            # Within one account (another Region) the rule's role is the permission; across
            # accounts the receiving bus's policy decides.
            if spec.account_id != sender and not admits(policies.get(bus), sender):
                logger.warning("EventBridge -> %s: the bus's policy does not allow account %s", spec, sender)
                return
            forwarded = dict(event, EventBusName=bus, _DispatchPath=[*event_path, key])
            eventbridge._dispatch_event(forwarded)
            archive_event({k: v for k, v in forwarded.items() if k != "_DispatchPath"})

    def to_lambda(arn, payload):
        try:
            event = json.loads(payload)
        except (json.JSONDecodeError, TypeError):
            event = {"body": payload}
        func, config, name = find_function(arn)
        if not func or not config:
            logger.warning("EventBridge -> Lambda %s: no such function", name)
            return
        record = execution_record(func, config)
        threading.Thread(target=invoke_asynchronously, args=(record, event), daemon=True).start()

    def invoke_asynchronously(record, event):
        config = record.get("config") or record
        account, region = scope_of(config)
        name = config.get("FunctionName", "")
        with request_scope(account, region):
            invoke = record.get("event_invoke_config") or (record.get("event_invoke_configs") or {}).get("$LATEST") or {}
            retries = invoke.get("MaximumRetryAttempts")
            retries = 2 if retries is None else int(retries)
            destination = (invoke.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination") or (
                config.get("DeadLetterConfig") or {}
            ).get("TargetArn")
            result = {}
            for attempt in range(retries + 1):
                if attempt:
                    time.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1])
                result = execute(record, event)
                failed = bool(result.get("error"))
                record_metric("AWS/Lambda", "Invocations", 1, "Count", {"FunctionName": name})
                record_metric("AWS/Lambda", "Errors", 1 if failed else 0, "Count", {"FunctionName": name})
                if not failed:
                    return
            if destination:
                route_failure(destination, name, event, result)

    eventbridge._dispatch_to_event_bus = to_bus
    eventbridge._dispatch_to_lambda = to_lambda
