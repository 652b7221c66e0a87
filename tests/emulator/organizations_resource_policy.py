"""Organizations' resource-based delegation policy, which moto 5.2.5 does not answer, added to its
Organizations responses as AWS documents it (Organizations API Reference: PutResourcePolicy,
DescribeResourcePolicy, DeleteResourcePolicy): one policy per organization, which PutResourcePolicy
creates or replaces; describing or deleting an organization without one is
ResourcePolicyNotFoundException. The policy is kept with the organization, so every account of
it reads the same one.
"""

import json
import uuid

from moto.organizations.exceptions import OrganizationsClientError
from moto.organizations.responses import OrganizationsResponse

POLICIES: dict[str, dict] = {}


class ResourcePolicyNotFoundException(OrganizationsClientError):
    def __init__(self) -> None:
        super().__init__("ResourcePolicyNotFoundException", "We can't find a resource policy request with the ID that you specified.")


def _organization(self) -> dict:
    return self.organizations_backend.describe_organization()["Organization"]


def put_resource_policy(self):
    org = _organization(self)
    content = self._get_param("Content") or ""
    json.loads(content)  # a malformed policy is refused, as Organizations does
    summary = POLICIES.get(org["Id"], {}).get("ResourcePolicySummary") or {
        "Id": f"rp-{uuid.uuid4().hex[:8]}",
        "Arn": f"arn:aws:organizations::{org['MasterAccountId']}:resourcepolicy/{org['Id']}/rp-{uuid.uuid4().hex[:8]}",
    }
    POLICIES[org["Id"]] = {"ResourcePolicySummary": summary, "Content": content}
    return json.dumps({"ResourcePolicy": POLICIES[org["Id"]]})


def describe_resource_policy(self):
    policy = POLICIES.get(_organization(self)["Id"])
    if policy is None:
        raise ResourcePolicyNotFoundException()
    return json.dumps({"ResourcePolicy": policy})


def delete_resource_policy(self):
    if POLICIES.pop(_organization(self)["Id"], None) is None:
        raise ResourcePolicyNotFoundException()
    return "{}"


def install():
    for name in ("put_resource_policy", "describe_resource_policy", "delete_resource_policy"):
        if hasattr(OrganizationsResponse, name):
            raise SystemExit(f"organizations_resource_policy: moto answers {name} itself; this moto is not the pinned one")
        setattr(OrganizationsResponse, name, globals()[name])
