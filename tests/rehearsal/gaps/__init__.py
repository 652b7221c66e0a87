"""What ministack 1.5.33 lacks and the rehearsal needs, each addition in a module of its own and
written as AWS documents the behaviour. Each checks that what it patches is there, so a ministack
other than the pinned one fails loudly instead of rehearsing something else."""

import importlib.metadata

PINNED = "1.5.33"


def fail(why: str):
    raise SystemExit(f"rehearsal launcher: {why}; tests/rehearsal/requirements.txt pins ministack {PINNED}")


def require(module, name: str):
    if not hasattr(module, name):
        fail(f"{module.__name__} has no {name}")
    return getattr(module, name)


def install():
    version = importlib.metadata.version("ministack")
    if version != PINNED:
        fail(f"ministack is {version}")
    from . import bus_policy, delivery, metric_alarms, organizations, service_events

    for addition in (bus_policy, metric_alarms, organizations, delivery, service_events):
        addition.install()
