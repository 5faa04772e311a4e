"""route.openshift.io/v1: Route."""

from __future__ import annotations

from .kinds import Column, Kind, Strategy
from .meta import Object
from .shapes import ANY, INT, S, top


class RouteStrategy(Strategy):
    def prepare_create(self, obj: Object) -> None:
        obj.setdefault("spec", {}).setdefault("wildcardPolicy", "None")

    def validate(self, obj: Object) -> list[tuple[str, str]]:
        to = (obj.get("spec") or {}).get("to") or {}
        if not to.get("name"):
            return [("spec.to.name", "Required value")]
        return []

    def columns(self) -> list[Column]:
        return [
            Column("Host/Port", "string", lambda o: (o.get("spec") or {}).get("host", "")),
            Column("Path", "string", lambda o: (o.get("spec") or {}).get("path", "")),
            Column(
                "Services",
                "string",
                lambda o: ((o.get("spec") or {}).get("to") or {}).get("name", ""),
            ),
            Column(
                "Termination",
                "string",
                lambda o: ((o.get("spec") or {}).get("tls") or {}).get("termination", ""),
            ),
        ]


ROUTE = Kind(
    "route.openshift.io",
    "v1",
    "Route",
    "routes",
    namespaced=True,
    strategy=RouteStrategy(),
    subresources=("status",),
    shape=top(
        spec={
            "host": S,
            "subdomain": S,
            "path": S,
            "wildcardPolicy": S,
            "to": {"kind": S, "name": S, "weight": INT},
            "alternateBackends": [{"kind": S, "name": S, "weight": INT}],
            "port": {"targetPort": ANY},
            "tls": {
                "termination": S,
                "certificate": S,
                "key": S,
                "caCertificate": S,
                "destinationCACertificate": S,
                "insecureEdgeTerminationPolicy": S,
                "externalCertificate": {"name": S},
            },
            "httpHeaders": ANY,
        },
        status={"ingress": [ANY]},
    ),
)
