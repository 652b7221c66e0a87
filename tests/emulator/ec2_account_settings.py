"""EC2 account-level settings moto 5.2.5 does not answer, added to its EC2 responses.

IMDS defaults, snapshot and AMI block public access, and reading or resetting the default EBS KMS
key. State lives on moto's EC2 backend, which is per account and region, exactly as in AWS. moto
dispatches EC2 actions by name to EC2Response methods and serialises ActionResult through
botocore's EC2 model, so the answers have the real response shapes.
"""

from moto.core.responses import ActionResult
from moto.ec2.responses import EC2Response

IMDS_DEFAULTS = {
    "HttpTokens": "no-preference",
    "HttpPutResponseHopLimit": -1,
    "HttpEndpoint": "no-preference",
    "InstanceMetadataTags": "no-preference",
}


def _settings(response):
    backend = response.ec2_backend
    if not hasattr(backend, "guardrail_settings"):
        backend.guardrail_settings = {
            "imds": dict(IMDS_DEFAULTS),
            "snapshot_bpa": "unblocked",
            "image_bpa": "unblocked",
        }
    return backend.guardrail_settings


def modify_instance_metadata_defaults(self):
    self.error_on_dryrun()
    imds = _settings(self)["imds"]
    for key in ("HttpTokens", "HttpEndpoint", "InstanceMetadataTags"):
        value = self._get_param(key)
        if value:
            imds[key] = value
    hop_limit = self._get_param("HttpPutResponseHopLimit")
    if hop_limit is not None:
        imds["HttpPutResponseHopLimit"] = int(hop_limit)
    return ActionResult({"Return": True})


def get_instance_metadata_defaults(self):
    self.error_on_dryrun()
    imds = _settings(self)["imds"]
    level = {k: v for k, v in imds.items() if v not in ("no-preference", -1)}
    return ActionResult({"AccountLevel": level})


def enable_snapshot_block_public_access(self):
    self.error_on_dryrun()
    state = self._get_param("State")
    _settings(self)["snapshot_bpa"] = state
    return ActionResult({"State": state})


def disable_snapshot_block_public_access(self):
    self.error_on_dryrun()
    _settings(self)["snapshot_bpa"] = "unblocked"
    return ActionResult({"State": "unblocked"})


def get_snapshot_block_public_access_state(self):
    self.error_on_dryrun()
    return ActionResult({"State": _settings(self)["snapshot_bpa"], "ManagedBy": "account"})


def enable_image_block_public_access(self):
    self.error_on_dryrun()
    state = self._get_param("ImageBlockPublicAccessState")
    _settings(self)["image_bpa"] = state
    return ActionResult({"ImageBlockPublicAccessState": state})


def disable_image_block_public_access(self):
    self.error_on_dryrun()
    _settings(self)["image_bpa"] = "unblocked"
    return ActionResult({"ImageBlockPublicAccessState": "unblocked"})


def get_image_block_public_access_state(self):
    self.error_on_dryrun()
    return ActionResult({"ImageBlockPublicAccessState": _settings(self)["image_bpa"], "ManagedBy": "account"})


def get_ebs_default_kms_key_id(self):
    self.error_on_dryrun()
    backend = self.ec2_backend
    key = getattr(backend, "default_kms_key_id", None) or backend.modify_ebs_default_kms_key_id("")
    return ActionResult({"KmsKeyId": key})


def reset_ebs_default_kms_key_id(self):
    self.error_on_dryrun()
    return ActionResult({"KmsKeyId": self.ec2_backend.modify_ebs_default_kms_key_id("")})


def install():
    for name, method in list(globals().items()):
        if callable(method) and name not in ("install", "ActionResult", "EC2Response", "_settings"):
            setattr(EC2Response, name, method)
