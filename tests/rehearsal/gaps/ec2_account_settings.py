"""EC2's account-level settings, which ministack 1.5.33 does not answer ("Unknown EC2 action") and a
baseline reads and sets in every Region: EBS encryption by default and its default KMS key, the
instance metadata defaults, and snapshot and AMI block public access. Each setting is per account
and per Region, as in AWS, with AWS's defaults: encryption off, the AWS managed `aws/ebs` key, no
account-level IMDS preference, sharing unblocked (EC2 API Reference: GetEbsEncryptionByDefault,
GetEbsDefaultKmsKeyId, ResetEbsDefaultKmsKeyId, GetInstanceMetadataDefaults,
GetSnapshotBlockPublicAccessState, GetImageBlockPublicAccessState). The answers carry the response
elements those pages list (`ebsEncryptionByDefault`, `kmsKeyId`, `accountLevel`, `state`,
`imageBlockPublicAccessState`, `managedBy`)."""

from xml.sax.saxutils import escape

from . import require

SNAPSHOT_STATES = ("block-all-sharing", "block-new-sharing")
IMAGE_STATES = ("block-new-sharing",)
TOKENS = ("optional", "required", "no-preference")


def install():
    from ministack.services import ec2

    actions = require(ec2, "_ACTION_MAP")
    xml, error, param = require(ec2, "_xml"), require(ec2, "_error"), require(ec2, "_p")
    account, region = require(ec2, "get_account_id"), require(ec2, "get_region")
    scopes: dict[tuple[str, str], dict] = {}

    def settings() -> dict:
        return scopes.setdefault((account(), region()), {
            "encryption": False, "key": None, "imds": {}, "snapshot": "unblocked", "image": "unblocked",
        })

    def managed_key() -> str:
        return f"arn:aws:kms:{region()}:{account()}:alias/aws/ebs"

    def answer(action: str, inner: str):
        return xml(200, f"{action}Response", inner)

    def get_ebs_encryption(params):
        on = "true" if settings()["encryption"] else "false"
        return answer("GetEbsEncryptionByDefault", f"<ebsEncryptionByDefault>{on}</ebsEncryptionByDefault><sseType>sse-ebs</sseType>")

    def set_ebs_encryption(on: bool, action: str):
        def handler(params):
            settings()["encryption"] = on
            return answer(action, f"<ebsEncryptionByDefault>{'true' if on else 'false'}</ebsEncryptionByDefault>")
        return handler

    def get_key(params):
        return answer("GetEbsDefaultKmsKeyId", f"<kmsKeyId>{escape(settings()['key'] or managed_key())}</kmsKeyId>")

    def modify_key(params):
        key = param(params, "KmsKeyId")
        if not key:
            return error("MissingParameter", "The request must contain the parameter KmsKeyId", 400)
        # A key id, alias, key ARN or alias ARN; the answer is an ARN.
        arn = key if key.startswith("arn:") else f"arn:aws:kms:{region()}:{account()}:{key if key.startswith('alias/') else 'key/' + key}"
        settings()["key"] = arn
        return answer("ModifyEbsDefaultKmsKeyId", f"<kmsKeyId>{escape(arn)}</kmsKeyId>")

    def reset_key(params):
        settings()["key"] = None
        return answer("ResetEbsDefaultKmsKeyId", f"<kmsKeyId>{escape(managed_key())}</kmsKeyId>")

    def get_imds(params):
        level = settings()["imds"]
        inner = "".join(f"<{name}>{escape(str(value))}</{name}>" for name, value in level.items())
        return answer("GetInstanceMetadataDefaults", f"<accountLevel>{inner}<managedBy>account</managedBy></accountLevel>")

    def modify_imds(params):
        level = settings()["imds"]
        tokens = param(params, "HttpTokens")
        if tokens and tokens not in TOKENS:
            return error("InvalidParameterValue", f"HttpTokens {tokens!r} is not one of {', '.join(TOKENS)}", 400)
        hops = param(params, "HttpPutResponseHopLimit")
        if hops and not (hops == "-1" or hops.isdigit() and 1 <= int(hops) <= 64):
            return error("InvalidParameterValue", "HttpPutResponseHopLimit must be 1 to 64, or -1 for no preference", 400)
        for name, value in (("httpTokens", tokens), ("httpPutResponseHopLimit", hops),
                            ("httpEndpoint", param(params, "HttpEndpoint")),
                            ("instanceMetadataTags", param(params, "InstanceMetadataTags"))):
            if value in ("no-preference", "-1"):
                level.pop(name, None)
            elif value:
                level[name] = value
        return answer("ModifyInstanceMetadataDefaults", "<return>true</return>")

    def block(key: str, name: str, states: tuple, element: str, action: str):
        def handler(params):
            state = param(params, name)
            if state not in states:
                return error("InvalidParameterValue", f"{name} {state!r} is not one of {', '.join(states)}", 400)
            settings()[key] = state
            return answer(action, f"<{element}>{state}</{element}>")
        return handler

    def unblock(key: str, element: str, action: str):
        def handler(params):
            settings()[key] = "unblocked"
            return answer(action, f"<{element}>unblocked</{element}>")
        return handler

    def state(key: str, element: str, action: str):
        def handler(params):
            return answer(action, f"<{element}>{settings()[key]}</{element}><managedBy>account</managedBy>")
        return handler

    added = {
        "GetEbsEncryptionByDefault": get_ebs_encryption,
        "EnableEbsEncryptionByDefault": set_ebs_encryption(True, "EnableEbsEncryptionByDefault"),
        "DisableEbsEncryptionByDefault": set_ebs_encryption(False, "DisableEbsEncryptionByDefault"),
        "GetEbsDefaultKmsKeyId": get_key,
        "ModifyEbsDefaultKmsKeyId": modify_key,
        "ResetEbsDefaultKmsKeyId": reset_key,
        "GetInstanceMetadataDefaults": get_imds,
        "ModifyInstanceMetadataDefaults": modify_imds,
        "EnableSnapshotBlockPublicAccess": block("snapshot", "State", SNAPSHOT_STATES, "state", "EnableSnapshotBlockPublicAccess"),
        "DisableSnapshotBlockPublicAccess": unblock("snapshot", "state", "DisableSnapshotBlockPublicAccess"),
        "GetSnapshotBlockPublicAccessState": state("snapshot", "state", "GetSnapshotBlockPublicAccessState"),
        "EnableImageBlockPublicAccess": block("image", "ImageBlockPublicAccessState", IMAGE_STATES, "imageBlockPublicAccessState", "EnableImageBlockPublicAccess"),
        "DisableImageBlockPublicAccess": unblock("image", "imageBlockPublicAccessState", "DisableImageBlockPublicAccess"),
        "GetImageBlockPublicAccessState": state("image", "imageBlockPublicAccessState", "GetImageBlockPublicAccessState"),
    }
    present = sorted(set(added) & set(actions))
    if present:
        # ministack answers these itself now: the addition would hide its behaviour.
        raise SystemExit(f"rehearsal launcher: ministack's EC2 now has {', '.join(present)}")
    actions.update(added)

