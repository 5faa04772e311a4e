"""The htpasswd-style identity provider: `name:argon2-hash` lines in one file."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
PROVIDER = "htpasswd"


class Htpasswd:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, str]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        entries = {}
        for line in text.splitlines():
            name, sep, hashed = line.partition(":")
            if sep and name:
                entries[name] = hashed
        return entries

    def users(self) -> list[str]:
        return sorted(self._read())

    def has(self, name: str) -> bool:
        return name in self._read()

    def verify(self, name: str, password: str) -> bool:
        hashed = self._read().get(name)
        if hashed is None:
            # Spend the same time as for a real user, so that names cannot be probed.
            _hasher.hash(password)
            return False
        try:
            return _hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    def set_password(self, name: str, password: str) -> None:
        if not name or ":" in name or "\n" in name or "/" in name:
            raise ValueError(f"invalid user name {name!r}")
        entries = self._read()
        entries[name] = _hasher.hash(password)
        self._write(entries)

    def remove(self, name: str) -> bool:
        entries = self._read()
        if entries.pop(name, None) is None:
            return False
        self._write(entries)
        return True

    def _write(self, entries: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = "".join(f"{name}:{hashed}\n" for name, hashed in sorted(entries.items()))
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".htpasswd-")
        with os.fdopen(fd, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)


def random_password() -> str:
    # Like OpenShift's kubeadmin password: four groups of five, easy to read back.
    alphabet = "23456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4))
