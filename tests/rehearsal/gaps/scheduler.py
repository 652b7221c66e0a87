"""EventBridge Scheduler, where ministack 1.5.33 differs from AWS:

- A schedule's target input may hold context attributes, which Scheduler replaces when it invokes
  the target: `<aws.scheduler.schedule-arn>`, `<aws.scheduler.scheduled-time>` (the time the
  schedule was to invoke it, e.g. `2022-03-22T18:59:43Z`), `<aws.scheduler.execution-id>` and
  `<aws.scheduler.attempt-number>` (EventBridge Scheduler User Guide, "Adding context attributes").
  ministack passed them through as written.
- A schedule fires when its expression comes due, at most once a day for Guardrail's sweeps.
  `POST /_rehearsal/fire-schedule` with `{"account", "region", "name", "group"?}` fires one now as
  Scheduler fires it when due: the occurrence is the current minute, its target gets the schedule's
  own input with the context attributes filled in, and a disabled schedule does not fire. The
  target is invoked as ministack's own ticker invokes it (a Lambda target asynchronously, by
  `gaps/delivery.py`).
"""

import re
import secrets
import time
import uuid
from datetime import datetime, timezone

from . import require, route

ROUTE = "/_rehearsal/fire-schedule"


def context_attributes(text: str, schedule: dict, at: float) -> str:
    """`text` with Scheduler's context attributes replaced, for the occurrence at `at` (epoch s)."""
    values = {
        "schedule-arn": schedule.get("Arn", ""),
        "scheduled-time": datetime.fromtimestamp(int(at), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "execution-id": secrets.token_hex(8),
        "attempt-number": "1",
    }
    return re.sub(r"<aws\.scheduler\.([a-z-]+)>", lambda m: values.get(m.group(1), m.group(0)), text)


def install():
    from ministack.core.responses import request_scope
    from ministack.services import eventbridge, scheduler

    schedules = require(scheduler, "_schedules")
    require(scheduler, "_tick_schedules")  # the ticker this stands beside
    invoke_target = require(eventbridge, "_invoke_target")

    def with_context(target, event, rule, view=None):
        """ministack's target invocation, with a schedule's context attributes filled in."""
        if "ScheduleExpression" in (rule or {}) and isinstance(target.get("Input"), str):
            target = dict(target, Input=context_attributes(target["Input"], rule, float(event.get("Time") or time.time())))
        return invoke_target(target, event, rule, view)

    def fire(body: dict) -> tuple[int, dict]:
        account, region, name = body.get("account"), body.get("region"), body.get("name")
        group = body.get("group") or "default"
        if not (isinstance(account, str) and re.fullmatch(r"\d{12}", account) and isinstance(region, str) and isinstance(name, str)):
            return 400, {"message": 'send {"account": "<12 digits>", "region": "...", "name": "...", "group"?: "..."}'}
        with request_scope(account, region):
            schedule = schedules.get(f"{group}/{name}")
            if schedule is None:
                return 404, {"message": f"no schedule {group}/{name} in {account} {region}"}
            if schedule.get("State") != "ENABLED":
                return 409, {"message": f"schedule {group}/{name} is {schedule.get('State')}: it does not fire"}
            at = time.time() // 60 * 60
            event = {
                "EventId": str(uuid.uuid4()), "Source": "aws.scheduler", "DetailType": "Scheduled Event",
                "Detail": "{}", "Time": at, "Resources": [schedule.get("Arn", "")], "Account": account, "Region": region,
            }
            eventbridge._invoke_target(schedule.get("Target") or {}, event, schedule)
        return 200, {"ScheduledTime": datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}

    eventbridge._invoke_target = with_context
    route(ROUTE, fire)
