"""Credentials for other registries, from Kubernetes pull secrets (`kubernetes.io/dockerconfigjson`
and the older `kubernetes.io/dockercfg`), matched by registry host as the kubelet does."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
DOCKER_CFG = "kubernetes.io/dockercfg"

# The spellings of Docker Hub in pull secrets (docker login writes the v1 index URL).
_DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


class Credentials(NamedTuple):
    username: str
    password: str

    def __repr__(self) -> str:  # never print a password by accident
        return f"Credentials(username={self.username!r}, password=<hidden>)"


def _host_of(key: str) -> str:
    """`https://index.docker.io/v1/` -> `docker.io`; `127.0.0.1:5000/path` -> `127.0.0.1:5000`."""
    host = key.strip()
    for scheme in ("https://", "http://"):
        if host.lower().startswith(scheme):
            host = host[len(scheme) :]
    host = host.split("/", 1)[0].lower()
    return "docker.io" if host in _DOCKER_HUB else host


def _decode(value: Any) -> Any:
    """A secret's data value: base64 of JSON. None when it is not."""
    if not isinstance(value, str):
        return None
    try:
        return json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return None


def _auths(secret: Mapping[str, Any]) -> Mapping[str, Any]:
    data = secret.get("data")
    if not isinstance(data, Mapping):
        return {}
    kind = secret.get("type")
    if kind == DOCKER_CONFIG_JSON:
        document = _decode(data.get(".dockerconfigjson"))
        auths = document.get("auths") if isinstance(document, dict) else None
    elif kind == DOCKER_CFG:
        auths = _decode(data.get(".dockercfg"))
    else:
        return {}
    return auths if isinstance(auths, dict) else {}


def _entry_credentials(entry: Any) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    username, password = entry.get("username"), entry.get("password")
    if isinstance(username, str) and isinstance(password, str) and username:
        return Credentials(username, password)
    auth = entry.get("auth")
    if not isinstance(auth, str):
        return None
    try:
        decoded = base64.b64decode(auth, validate=True).decode()
    except (binascii.Error, ValueError):
        return None
    username, colon, password = decoded.partition(":")
    return Credentials(username, password) if colon and username else None


def _entries(secrets: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, Credentials]]:
    for secret in secrets:
        if not isinstance(secret, Mapping):
            continue
        for key, entry in _auths(secret).items():
            found = _entry_credentials(entry)
            if isinstance(key, str) and found is not None:
                yield _host_of(key), found


def credentials_for(registry: str, secrets: Iterable[Mapping[str, Any]]) -> Credentials | None:
    """The first credentials the secrets hold for `registry` (a host with optional port);
    None when none match. Malformed secrets are passed over, never an error."""
    wanted = _host_of(registry)
    for host, found in _entries(secrets):
        if host == wanted:
            return found
    return None
