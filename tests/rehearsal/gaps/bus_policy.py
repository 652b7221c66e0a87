"""The resource type `AWS::Events::EventBusPolicy` (CloudFormation User Guide): `Statement` is one
statement of the bus's resource policy, with `StatementId` as its Sid, replacing any statement of
that id; deleting the resource removes it. (The older `Action`/`Principal`/`Condition` form builds
the same statement.)"""

from . import fail, require


def install():
    from ministack.services import eventbridge
    from ministack.services.cloudformation import provisioners

    handlers = require(provisioners, "_RESOURCE_HANDLERS")
    policies = require(eventbridge, "_event_bus_policies")
    region_of = require(eventbridge, "get_region")
    account_of = require(eventbridge, "get_account_id")

    def bus_statement(props: dict) -> tuple[str, dict]:
        bus = props.get("EventBusName") or "default"
        sid = props.get("StatementId")
        if not sid:
            raise ValueError("AWS::Events::EventBusPolicy StatementId is required")
        statement = dict(props.get("Statement") or {})
        if not statement:
            statement = {
                "Effect": "Allow",
                "Principal": {"AWS": props.get("Principal", "*")},
                "Action": props.get("Action", "events:PutEvents"),
                "Resource": f"arn:aws:events:{region_of()}:{account_of()}:event-bus/{bus}",
            }
            if props.get("Condition"):
                statement["Condition"] = props["Condition"]
        statement["Sid"] = sid
        return bus, statement

    def remove(bus: str, sid: str):
        policy = policies.get(bus)
        if policy:
            policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != sid]
            if not policy["Statement"]:
                del policies[bus]

    def create(logical_id, props, stack_name):
        bus, statement = bus_statement(props)
        remove(bus, statement["Sid"])
        policy = policies.get(bus) or {"Version": "2012-10-17", "Statement": []}
        policy["Statement"].append(statement)
        policies[bus] = policy
        return statement["Sid"], {}

    def delete(physical_id, props):
        remove(props.get("EventBusName") or "default", physical_id)

    def update(physical_id, props, *rest):
        delete(physical_id, props)
        return create(None, props, None)

    if "AWS::Events::EventBusPolicy" in handlers:
        fail("ministack now provisions AWS::Events::EventBusPolicy itself: drop this addition")
    handlers["AWS::Events::EventBusPolicy"] = {"create": create, "update": update, "delete": delete}
