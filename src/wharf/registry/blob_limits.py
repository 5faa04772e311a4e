"""The largest blob a repository takes: its project's LimitRange `openshift.io/Image`
`max.storage`, checked when an upload is committed, as OpenShift's registry does (a blob over
it is refused with DENIED and never becomes visible). The registry alone (`--no-auth`) has no
projects, hence no limits."""

from __future__ import annotations

from typing import Protocol

from ..db.database import Database
from ..images.admission import image_limit_of
from ..images.limits import Limit, image_size_problem
from .cluster_access import split_repository
from .errors import RegistryError


class BlobLimits(Protocol):
    async def limit(self, name: str) -> Limit | None:
        """The largest blob repository `name` takes; None: any size."""


class NoLimits:
    async def limit(self, name: str) -> Limit | None:
        return None


class ProjectLimits:
    """Read at every commit (one indexed read): a limit an administrator just set applies to
    the next blob, where OpenShift's registry caches them for a minute."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def limit(self, name: str) -> Limit | None:
        parts = split_repository(name)
        if parts is None:
            return None
        project = parts[0]
        return await self.db.run_read(lambda conn: image_limit_of(conn, project), small=True)


def check_blob_size(size: int, limit: Limit | None) -> None:
    """Refuse a blob of `size` bytes over `limit` with DENIED and the limit's message."""
    problem = image_size_problem(size, limit)
    if problem is not None:
        raise RegistryError("DENIED", problem)
