"""`AWS::CloudWatch::Alarm` with `Metrics` (metric math) instead of `MetricName` and `Namespace`:
the alarm is created with its metrics, as PutMetricAlarm takes them. ministack evaluates no alarm,
so nothing else changes."""

from . import require


def install():
    from ministack.services.cloudformation import provisioners

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
