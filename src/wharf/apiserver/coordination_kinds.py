"""coordination.k8s.io/v1: Lease, which processes sharing one database take turns holding (the
registry's operator runs where its lease is held: wharf.operator.leadership)."""

from __future__ import annotations

from .kinds import Column, Kind, Strategy
from .meta import Object
from .shapes import INT, TIME, S, top


class LeaseStrategy(Strategy):
    def validate(self, obj: Object) -> list[tuple[str, str]]:
        spec = obj.get("spec") or {}
        seconds = spec.get("leaseDurationSeconds") if isinstance(spec, dict) else None
        if isinstance(seconds, int) and seconds <= 0:
            return [("spec.leaseDurationSeconds", "must be greater than 0")]
        return []

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
