"""Events that AWS services emit, which `PutEvents` refuses to anyone else (`aws.*` sources):
"AWS services send events to your account's default event bus" (EventBridge User Guide, "Events
from AWS services"). `POST /_rehearsal/service-event` with `{"account": ..., "event": {...}}` puts
an event, as the service wrote it (its `id`, `time`, `source`, `detail-type`, `resources` and
`detail`), on that account's default bus, where the account's rules match it. A service may
deliver one event more than once; sending the same `id` again is that."""

import json
import re
from datetime import datetime

from . import require, route

ROUTE = "/_rehearsal/service-event"
FIELDS = ("id", "source", "detail-type", "time", "region", "detail")


def emit(body: dict) -> tuple[int, dict]:
    from ministack.core.responses import request_scope
    from ministack.services import eventbridge

    account, event = body.get("account"), body.get("event")
    if not isinstance(account, str) or not re.fullmatch(r"\d{12}", account) or not isinstance(event, dict):
        return 400, {"message": 'send {"account": "<12 digits>", "event": {...}}'}
    missing = [f for f in FIELDS if f not in event]
    if missing:
        return 400, {"message": f"the event lacks {', '.join(missing)}"}
    if not str(event["source"]).startswith("aws."):
        return 400, {"message": "only AWS services' events (aws.*) come this way; use PutEvents"}
    try:
        at = int(datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 400, {"message": f"time {event['time']!r} is not ISO 8601"}
    with request_scope(account, event["region"]):
        eventbridge._ensure_default_bus()
        record = {
            "EventId": event["id"],
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"]),
            "EventBusName": "default",
            "Time": at,
            "Resources": event.get("resources", []),
            "Account": account,
            "Region": event["region"],
        }
        eventbridge._events_log_list().append(record)
        eventbridge._dispatch_event(record)
        eventbridge._archive_event(record)
    return 200, {"EventId": event["id"]}


def install():
    from ministack.services import eventbridge

    for name in ("_ensure_default_bus", "_events_log_list", "_dispatch_event", "_archive_event"):
        require(eventbridge, name)
    route(ROUTE, emit)
