"""CloudFormation conditions that refer to pseudo parameters, which ministack 1.5.33 compares as
their literal names (`AWS::AccountId` equals no account): a condition may `Ref` the pseudo
parameters like any parameter (CloudFormation User Guide, "Conditions syntax" and "Get AWS values
using pseudo parameters"). forwarding.yaml's FindingsElsewhere compares `AWS::AccountId` and
`AWS::Region` with its parameters."""

from . import require

# Modules that import the evaluator by name (provisioners imports it from engine when it runs).
MODULES = ("engine", "changesets", "handlers", "stacks")


def install():
    import importlib

    modules = [importlib.import_module(f"ministack.services.cloudformation.{m}") for m in MODULES]
    engine = modules[0]
    evaluate = require(engine, "_evaluate_conditions")
    account, region = require(engine, "get_account_id"), require(engine, "get_region")
    for m in modules[1:]:
        if getattr(m, "_evaluate_conditions", None) is not evaluate:
            raise SystemExit(f"rehearsal launcher: {m.__name__} evaluates conditions some other way")

    def with_pseudo_parameters(template, params):
        pseudo = {"AWS::AccountId": account(), "AWS::Region": region(), "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
        given = dict(params or {})
        for name, value in pseudo.items():
            given.setdefault(name, {"Value": value})
        return evaluate(template, given)

    for m in modules:
        m._evaluate_conditions = with_pseudo_parameters
