"""coordination.k8s.io/v1: Lease, which processes sharing one database take turns holding (the
registry's operator runs where its lease is held: wharf.operator.leadership)."""

from __future__ import annotations

from .kinds import Column, Kind, Strategy
from .meta import Object
from .shapes import INT, TIME, S, top


class LeaseStrategy(Strategy):
    def validate(self, obj: Object) -> list[tuple[str, str]]:
        # As Kubernetes validates a Lease (the types are checked before, by the shape).
        spec = obj.get("spec") or {}
        if not isinstance(spec, dict):
            return []
        problems = []
        seconds = spec.get("leaseDurationSeconds")
        if isinstance(seconds, int) and seconds <= 0:
            problems.append(("spec.leaseDurationSeconds", "must be greater than 0"))
        transitions = spec.get("leaseTransitions")
        if isinstance(transitions, int) and transitions < 0:
            problems.append(("spec.leaseTransitions", "must be greater than or equal to 0"))
        return problems

    def columns(self) -> list[Column]:
        return [
            Column("Holder", "string", lambda o: (o.get("spec") or {}).get("holderIdentity") or ""),
        ]


LEASE = Kind(
    "coordination.k8s.io",
    "v1",
    "Lease",
    "leases",
    namespaced=True,
    strategy=LeaseStrategy(),
    shape=top(
        spec={
            "holderIdentity": S,
            "leaseDurationSeconds": INT,
            "acquireTime": TIME,
            "renewTime": TIME,
            "leaseTransitions": INT,
            "strategy": S,
            "preferredHolder": S,
        }
    ),
)
