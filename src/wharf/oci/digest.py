"""Content digests as the OCI image spec defines them (`algorithm:encoded`)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

# The registered algorithms we verify; the spec allows others in grammar, but a registry
# must be able to check what it stores, so anything else is refused as DIGEST_INVALID.
_ENCODED = {
    "sha256": re.compile(r"[a-f0-9]{64}"),
    "sha512": re.compile(r"[a-f0-9]{128}"),
}


class InvalidDigest(ValueError):
    """A string that is not a digest we can verify."""


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    encoded: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        algorithm, sep, encoded = text.partition(":")
        pattern = _ENCODED.get(algorithm)
        if not sep or pattern is None or not pattern.fullmatch(encoded):
            raise InvalidDigest(f"invalid digest {text[:200]!r}")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> Any:
        return hashlib.new(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"


def is_digest(text: str) -> bool:
    try:
        Digest.parse(text)
    except InvalidDigest:
        return False
    return True
