"""Where the registry is reached, as image streams report it: the internal address (the
listen address) and the public one, the host of the `default-route` Route."""

from __future__ import annotations

import time

from ..db.objects import Key, ObjectStore
from .image_kinds import Addresses

ROUTE_NAMESPACE = "openshift-image-registry"
ROUTE_NAME = "default-route"
ROUTES = "routes.route.openshift.io"


class RouteAddresses:
    CACHE_SECONDS = 1.0

    def __init__(self, store: ObjectStore, internal: str) -> None:
        self.store = store
        self.internal = internal
        self._cached: tuple[float, Addresses] | None = None

    async def addresses(self) -> Addresses:
        moment = time.monotonic()
        if self._cached is not None and self._cached[0] > moment:
            return self._cached[1]
        route = await self.store.get(Key(ROUTES, ROUTE_NAMESPACE, ROUTE_NAME))
        host = ((route or {}).get("spec") or {}).get("host") or None
        found = Addresses(self.internal, host)
        self._cached = (moment + self.CACHE_SECONDS, found)
        return found

    async def internal_address(self) -> str:
        return self.internal
