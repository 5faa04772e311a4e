"""Blob files that are not what the database recorded: never served, each reported once."""

from __future__ import annotations

import structlog

log = structlog.get_logger("wharf.registry")


class DamageLog:
    """The blobs found damaged, so that each is logged once however often it is asked for."""

    def __init__(self) -> None:
        self._reported: set[str] = set()

    def intact(self, digest: str, expected: int, found: int | None) -> bool:
        """Whether the store's `found` size of the blob is the `expected` one; a damaged blob
        is logged the first time it is seen so."""
        if found == expected:
            # Repaired (a push replaced the file): damage seen later is news again.
            self._reported.discard(digest)
            return True
        if digest not in self._reported:
            self._reported.add(digest)
            log.warning("blob file damaged", digest=digest, expected=expected, found=found)
        return False
