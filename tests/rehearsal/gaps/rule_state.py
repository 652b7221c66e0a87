"""Rule states, where ministack 1.5.33 matches only `ENABLED` rules and lets those match every
event: a rule `ENABLED` matches every event except read-only management events delivered through
CloudTrail, and a rule `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS` matches those too
(EventBridge User Guide, "Receiving read-only management events from AWS services"; EventBridge
API Reference, Rule: State). A read-only management event is an `AWS API Call via CloudTrail`
whose `detail.readOnly` is true."""

import json

from . import require

ALL = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"


def read_only(event: dict) -> bool:
    if event.get("DetailType") != "AWS API Call via CloudTrail":
        return False
    try:
        detail = json.loads(event.get("Detail") or "{}")
    except (TypeError, ValueError):
        return False
    return detail.get("readOnly") is True and detail.get("managementEvent", True) is not False


def install():
    from ministack.services import eventbridge

    rules, targets = require(eventbridge, "_rules"), require(eventbridge, "_targets")
    view_of, matches = require(eventbridge, "_pattern_event_view"), require(eventbridge, "_matches_pattern_view")
    require(eventbridge, "_dispatch_event")
    logger = eventbridge.logger

    def dispatch_event(event, view=None):
        bus_name = event.get("EventBusName", "default")
        event_path = set(event.get("_DispatchPath") or [])
        view = view or view_of(event)
        reading = read_only(event)
        for key, rule in rules.items():
            if rule.get("EventBusName", "default") != bus_name:
                continue
            if key in event_path:
                logger.warning("EventBridge: recursive rule dispatch skipped for %s", key)
                continue
            state = rule.get("State")
            if state not in ("ENABLED", ALL) or (reading and state != ALL) or not rule.get("EventPattern"):
                continue
            if matches(rule["EventPattern"], view, f"rule {key}"):
                for target in targets.get(key, []):
                    eventbridge._invoke_target(target, event, rule, view)

    eventbridge._dispatch_event = dispatch_event
