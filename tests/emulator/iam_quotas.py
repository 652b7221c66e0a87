"""IAM quotas moto 5.2.5 does not enforce, added to its IAM backend as AWS documents them (IAM
User Guide, "IAM and AWS STS quotas"): a role or user carries at most 50 tags (keys compared
without regard to case, as IAM does for principals), and a role's inline policies hold at most
10,240 characters in all, a user's 2,048, whitespace not counted. Past either, IAM refuses the
call with LimitExceeded (HTTP 409), which is what an agent that fills its own quotas makes
Guardrail's quarantine meet.
"""

from moto.iam.exceptions import LimitExceededException
from moto.iam.models import IAMBackend

TAGS_PER_PRINCIPAL = 50
ROLE_INLINE_CHARACTERS = 10240
USER_INLINE_CHARACTERS = 2048


def _characters(document: str) -> int:
    return len("".join(document.split()))


def _too_many(existing, added) -> bool:
    keys = {t["Key"].lower() for t in existing} | {t["Key"].lower() for t in added}
    return len(keys) > TAGS_PER_PRINCIPAL


def _inline_after(policies: dict, name: str, document: str) -> int:
    return sum(_characters(d) for n, d in policies.items() if n != name) + _characters(document)


def install():
    for name in ("tag_role", "tag_user", "put_role_policy", "put_user_policy", "get_role", "get_user"):
        if not callable(getattr(IAMBackend, name, None)):
            raise SystemExit(f"iam_quotas: moto's IAMBackend has no {name}; this moto is not the pinned one")
    tag_role, tag_user = IAMBackend.tag_role, IAMBackend.tag_user
    put_role_policy, put_user_policy = IAMBackend.put_role_policy, IAMBackend.put_user_policy

    def tag_role_within_quota(self, role_name, tags):
        if _too_many(self.get_role(role_name).tags, tags):
            raise LimitExceededException(f"Cannot exceed quota for TagsPerRole: {TAGS_PER_PRINCIPAL}.")
        return tag_role(self, role_name, tags)

    def tag_user_within_quota(self, name, tags):
        user = self.get_user(name)
        if _too_many(self.tagger.list_tags_for_resource(user.arn)["Tags"], tags):
            raise LimitExceededException(f"Cannot exceed quota for TagsPerUser: {TAGS_PER_PRINCIPAL}.")
        return tag_user(self, name, tags)

    def put_role_policy_within_quota(self, role_name, policy_name, policy_json):
        if _inline_after(self.get_role(role_name).policies, policy_name, policy_json) > ROLE_INLINE_CHARACTERS:
            raise LimitExceededException(
                f"Maximum policy size of {ROLE_INLINE_CHARACTERS} bytes exceeded for role {role_name}"
            )
        return put_role_policy(self, role_name, policy_name, policy_json)

    def put_user_policy_within_quota(self, user_name, policy_name, policy_json):
        if _inline_after(self.get_user(user_name).policies, policy_name, policy_json) > USER_INLINE_CHARACTERS:
            raise LimitExceededException(
                f"Maximum policy size of {USER_INLINE_CHARACTERS} bytes exceeded for user {user_name}"
            )
        return put_user_policy(self, user_name, policy_name, policy_json)

    IAMBackend.tag_role = tag_role_within_quota
    IAMBackend.tag_user = tag_user_within_quota
    IAMBackend.put_role_policy = put_role_policy_within_quota
    IAMBackend.put_user_policy = put_user_policy_within_quota
