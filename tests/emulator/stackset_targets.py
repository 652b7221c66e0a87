"""DeleteStackInstances by OU, which moto 5.2.5 ignores (it deletes only the accounts named in
`Accounts`, so a service-managed StackSet, whose instances are addressed by OU, could never be
emptied and deleted): `DeploymentTargets.OrganizationalUnitIds` names the accounts of those OUs,
as CreateStackInstances reads them (CloudFormation API Reference, DeleteStackInstances:
"[Service-managed permissions] The Organizations accounts from which to delete stack
instances").
"""

from moto.cloudformation.responses import CloudFormationResponse


def install():
    original = getattr(CloudFormationResponse, "delete_stack_instances", None)
    if not callable(original):
        raise SystemExit("stackset_targets: moto's CloudFormationResponse has no delete_stack_instances; this moto is not the pinned one")

    def delete_stack_instances(self):
        targets = (self._get_params().get("DeploymentTargets") or {}).get("OrganizationalUnitIds") or []
        if targets:
            stackset = self.cloudformation_backend.describe_stack_set(self._get_param("StackSetName"))
            org = stackset.instances.org_backend
            # The OUs and their direct children, as moto's CreateStackInstances places them.
            ous = list(targets) + [ou.id for ou in org.ou if ou.parent_id in targets]
            accounts = [a.id for a in org.accounts if a.parent_id in ous]
            original_get_param = self._get_param

            def get_param(name, default=None):
                return accounts if name == "Accounts" else original_get_param(name, default)

            self._get_param = get_param
        return original(self)

    CloudFormationResponse.delete_stack_instances = delete_stack_instances
