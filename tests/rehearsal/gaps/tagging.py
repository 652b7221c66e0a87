"""The Resource Groups Tagging API over CloudWatch alarms, which ministack 1.5.33 leaves out of
`GetResources`: AWS lists an alarm (`cloudwatch:alarm`) with its tags like any other supported
resource, in the caller's account and Region (Resource Groups Tagging API User Guide, "Services
that support the Resource Groups Tagging API"). agent-quarantine reads the tag naming the role an
alarm watches this way."""

from . import require


def install():
    from ministack.core.responses import get_region
    from ministack.services import cloudwatch, tagging

    collectors = require(tagging, "_COLLECTORS")
    alarms = require(cloudwatch, "_alarms")
    tags = require(cloudwatch, "_resource_tags")
    if "cloudwatch" in collectors:
        raise SystemExit("rehearsal launcher: ministack's Tagging API lists CloudWatch now")

    def collect_alarms():
        for alarm in list(alarms.values()):
            arn = alarm.get("AlarmArn", "")
            if arn.split(":")[3:4] == [get_region()]:
                yield arn, [{"Key": k, "Value": v} for k, v in (tags.get(arn) or {}).items()]

    collectors["cloudwatch"] = collect_alarms
