"""Conditions as OpenShift's operators write them (type, status "True"/"False", reason,
message, lastTransitionTime), and the registry's Available/Progressing/Degraded/Removed with the
reasons of cluster-image-registry-operator."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..apiserver.meta import Object, now
from .s3 import Condition

READY = "The registry is ready"


@dataclass(frozen=True)
class Health:
    """What the operator found, from which the registry's conditions follow."""

    management_state: str
    desired: int
    ready: int
    problems: tuple[str, ...] = ()  # routes not served as configured
    errors: tuple[str, ...] = ()  # a step that failed (storage); retried
    pending: str = ""  # a change that waits for something, said as a sentence


def registry_conditions(health: Health) -> list[Condition]:
    state = health.management_state
    if state == "Unmanaged":
        message = "The registry configuration is set to unmanaged mode"
        return [
            Condition("Available", True, "Unmanaged", message),
            Condition("Progressing", False, "Unmanaged", message),
            Condition("Degraded", False, "Unmanaged", message),
            Condition("Removed", False, "", ""),
        ]
    if state == "Removed":
        degraded = Condition("Degraded", False, "Removed", "The registry is removed")
        if health.errors:
            degraded = Condition("Degraded", True, "RemoveFailed", "; ".join(health.errors))
        return [
            Condition("Available", True, "Removed", "The registry is removed"),
            Condition("Progressing", False, "Removed", "All registry resources are removed"),
            degraded,
            Condition("Removed", True, "Removed", "The registry is removed"),
        ]
    if health.ready <= 0:
        available = Condition(
            "Available",
            False,
            "NoReplicasAvailable",
            "The deployment does not have available replicas",
        )
    elif health.ready < health.desired:
        available = Condition(
            "Available", True, "MinimumAvailability", "The registry has minimum availability"
        )
    else:
        available = Condition("Available", True, "Ready", READY)
    if health.errors:
        progressing = Condition("Progressing", True, "Error", "; ".join(health.errors))
    elif health.ready != health.desired:
        progressing = Condition(
            "Progressing",
            True,
            "DeploymentNotCompleted",
            f"The deployment has not completed: {health.ready} of {health.desired} replicas "
            "are ready",
        )
    elif health.pending:
        progressing = Condition("Progressing", True, "WaitingForRestart", health.pending)
    else:
        progressing = Condition("Progressing", False, "Ready", READY)
    if health.problems:
        degraded = Condition("Degraded", True, "RouteDegraded", "; ".join(health.problems))
    elif health.errors:
        degraded = Condition("Degraded", True, "Error", "; ".join(health.errors))
    else:
        degraded = Condition("Degraded", False, "AsExpected", "")
    return [available, progressing, degraded, Condition("Removed", False, "", "")]


def merged(old: Iterable[Object], new: Iterable[Condition]) -> list[Object]:
    """`new` as status conditions, keeping the lastTransitionTime of those whose status did not
    change; `new` is the whole set (a condition it does not name is gone)."""
    before = {c.get("type"): c for c in old}
    result = []
    moment = now()
    for condition in new:
        status = "True" if condition.status else "False"
        previous = before.pop(condition.type, {})
        item: Object = {
            "type": condition.type,
            "status": status,
            "lastTransitionTime": previous.get("lastTransitionTime", moment)
            if previous.get("status") == status
            else moment,
        }
        if condition.reason:
            item["reason"] = condition.reason
        if condition.message:
            item["message"] = condition.message
        result.append(item)
    return result


def same_status(a: Object | None, b: Object | None) -> bool:
    """Equal but for when conditions last changed."""

    def plain(status: Object | None) -> Object:
        status = dict(status or {})
        status["conditions"] = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"}
            for c in status.get("conditions") or []
        ]
        return status

    return plain(a) == plain(b)
