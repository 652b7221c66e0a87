"""Organizations as a delegated administrator sees it (Organizations User Guide, "Delegated
administrator for AWS Organizations"; API reference: `PutResourcePolicy`, `DescribeResourcePolicy`,
`DeleteResourcePolicy`):

- the organization's resource policy, one per organization, kept by the management account, and
  the resource type `AWS::Organizations::ResourcePolicy` that manages it;
- a member account's calls are answered from its organization: `DescribeOrganization` for any
  member, every other action only when the resource policy allows it to the member's account
  (`arn:aws:iam::<member>:root`, or `*`), and `AccessDeniedException` otherwise. A statement
  with a `Condition` is not modelled and allows nothing here. (ministack answers every account
  from an organization of its own.)
"""

import json

from . import fail, require, statements_naming

KEPT = None  # the resource policies, per management account (set by install)


def organization_of(account: str):
    """`(management account, organization id)` of the organization `account` belongs to, or None."""
    from ministack.services import organizations

    for (scope, key), org in list(organizations._orgs._data.items()):
        if key == "self" and scope == account:
            return scope, org["Id"]
    for (scope, member) in list(organizations._accounts._data):
        if member == account and scope != account:
            org = organizations._orgs._data.get((scope, "self"))
            if org:
                return scope, org["Id"]
    return None


def allows(management: str, member: str, action: str) -> bool:
    """Whether the organization's resource policy allows `organizations:<action>` to `member`."""
    kept = KEPT._data.get((management, "policy")) if KEPT is not None else None
    if not kept:
        return False
    allowed = False
    for s in statements_naming(json.loads(kept["Content"]), member, f"organizations:{action}"):
        if s.get("Effect") == "Deny":
            return False
        allowed = allowed or (s.get("Effect") == "Allow" and not s.get("Condition"))
    return allowed


def install():
    from ministack.services.cloudformation import provisioners

    install_resource_policy(require(provisioners, "_RESOURCE_HANDLERS"))
    install_delegation()


def install_delegation():
    from ministack.core.responses import error_response_json, get_account_id, get_region, request_scope
    from ministack.services import organizations

    dispatch = require(organizations, "_DISPATCH")
    require(organizations, "_orgs")
    require(organizations, "_accounts")

    def delegated(action, handler):
        def answer(payload):
            caller = get_account_id()
            found = organization_of(caller)
            if found is None or found[0] == caller:
                return handler(payload)
            management = found[0]
            if action != "DescribeOrganization" and not allows(management, caller, action):
                return error_response_json(
                    "AccessDeniedException",
                    f"You don't have permissions to access this resource (organizations:{action} is not delegated to {caller}).",
                    400,
                )
            with request_scope(management, get_region()):
                return handler(payload)

        return answer

    for action, handler in list(dispatch.items()):
        dispatch[action] = delegated(action, handler)


def install_resource_policy(handlers: dict):
    global KEPT
    from ministack.core.responses import AccountScopedDict, error_response_json, get_account_id, new_uuid
    from ministack.services import organizations

    dispatch = require(organizations, "_DISPATCH")
    ensure_org = require(organizations, "_ensure_org")
    orgs = require(organizations, "_orgs")
    answer = require(organizations, "_json")
    for action in ("PutResourcePolicy", "DescribeResourcePolicy", "DeleteResourcePolicy"):
        if action in dispatch:
            fail(f"ministack now answers organizations:{action} itself: drop this addition")
    kept = KEPT = AccountScopedDict()

    def put(payload):
        ensure_org()
        content = payload.get("Content")
        if not isinstance(content, str):
            return error_response_json("InvalidInputException", "Content is a JSON policy document string", 400)
        org = orgs["self"]["Id"]
        current = kept.get("policy")
        rp = current["ResourcePolicySummary"]["Id"] if current else "rp-" + new_uuid().replace("-", "")[:8]
        kept["policy"] = {
            "ResourcePolicySummary": {"Id": rp, "Arn": f"arn:aws:organizations::{get_account_id()}:resourcepolicy/{org}/{rp}"},
            "Content": content,
        }
        return answer(200, {"ResourcePolicy": kept["policy"]})

    def describe(_payload):
        if "policy" not in kept:
            return error_response_json("ResourcePolicyNotFoundException", "no resource policy", 400)
        return answer(200, {"ResourcePolicy": kept["policy"]})

    def delete(_payload):
        if "policy" not in kept:
            return error_response_json("ResourcePolicyNotFoundException", "no resource policy", 400)
        del kept["policy"]
        return answer(200, {})

    dispatch.update(PutResourcePolicy=put, DescribeResourcePolicy=describe, DeleteResourcePolicy=delete)

    def resource_create(logical_id, props, stack_name):
        content = props.get("Content")
        status, _, body = put({"Content": content if isinstance(content, str) else json.dumps(content)})
        if status != 200:
            raise ValueError(f"AWS::Organizations::ResourcePolicy: {body!r}")
        summary = json.loads(body)["ResourcePolicy"]["ResourcePolicySummary"]
        return summary["Id"], {"Id": summary["Id"], "Arn": summary["Arn"]}

    def resource_delete(physical_id, props):
        kept.pop("policy", None)

    def resource_update(physical_id, props, *rest):
        return resource_create(None, props, None)

    if "AWS::Organizations::ResourcePolicy" in handlers:
        fail("ministack now provisions AWS::Organizations::ResourcePolicy itself: drop this addition")
    handlers["AWS::Organizations::ResourcePolicy"] = {
        "create": resource_create, "update": resource_update, "delete": resource_delete,
    }
