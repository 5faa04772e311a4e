"""Resource types as the server announces them (/api, /apis), and the names a user may give
them: plural, singular, kind, short names, and `type.group`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

from .client import Client
from .errors import ApiFailure, CliError


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`routes.route.openshift.io`, as Kubernetes names a resource in its messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def kind_name(self) -> str:
        """`route.route.openshift.io`, as kubectl prints `-o name` and `created` lines."""
        kind = self.kind.lower()
        return f"{kind}.{self.group}" if self.group else kind

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe=':~@')}"
        if sub:
            base += f"/{sub}"
        return base

    def names(self) -> tuple[str, ...]:
        return (self.plural, self.singular, *self.short_names, self.kind.lower())


def _types(group: str, version: str, listing: dict[str, Any]) -> list[ResourceType]:
    found = []
    for entry in listing.get("resources") or []:
        if not isinstance(entry, dict) or "/" in str(entry.get("name", "")):
            continue
        found.append(
            ResourceType(
                group=group,
                version=version,
                plural=str(entry["name"]),
                singular=str(entry.get("singularName") or str(entry.get("kind", "")).lower()),
                kind=str(entry.get("kind", "")),
                namespaced=bool(entry.get("namespaced")),
                verbs=tuple(entry.get("verbs") or ()),
                short_names=tuple(entry.get("shortNames") or ()),
            )
        )
    return found


CACHE_SECONDS = 600


def cache_file(server: str) -> Path:
    """Where the types a server announced are kept for a while, as kubectl keeps them:
    $WHARF_CACHE_DIR, else ~/.kube/cache/wharf."""
    base = os.environ.get("WHARF_CACHE_DIR") or Path.home() / ".kube" / "cache" / "wharf"
    parsed = urlparse(server)
    name = re.sub(r"[^A-Za-z0-9.-]", "_", f"{parsed.hostname}_{parsed.port or 443}")
    return Path(base) / "discovery" / f"{name}.json"


class Discovery:
    def __init__(self, client: Client, cache: Path | None = None) -> None:
        self.client = client
        self.cache = cache
        self._all: list[ResourceType] | None = None
        self._fresh = False  # fetched from the server by this process

    def _load(self) -> list[ResourceType] | None:
        if self.cache is None:
            return None
        try:
            if time.time() - self.cache.stat().st_mtime > CACHE_SECONDS:
                return None
            entries = json.loads(self.cache.read_text())
            return [
                ResourceType(
                    **{**e, "verbs": tuple(e["verbs"]), "short_names": tuple(e["short_names"])}
                )
                for e in entries
            ]
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def _save(self, types: list[ResourceType]) -> None:
        if self.cache is None:
            return
        with contextlib.suppress(OSError):
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.cache.parent, prefix=".discovery-")
            with os.fdopen(fd, "w") as stream:
                json.dump([asdict(t) for t in types], stream)
            os.replace(temporary, self.cache)

    def _fetch(self) -> list[ResourceType]:
        found = _types("", "v1", self.client.get("/api/v1"))
        groups = self.client.get("/apis").get("groups") or []
        for group in groups:
            preferred = group.get("preferredVersion") or (group.get("versions") or [{}])[0]
            version = str(preferred.get("version", ""))
            name = str(group.get("name", ""))
            if not name or not version:
                continue
            found += _types(name, version, self.client.get(f"/apis/{name}/{version}"))
        return found

    def all(self, fresh: bool = False) -> list[ResourceType]:
        """Every resource type: the core group first, then the groups in the server's order."""
        if fresh and not self._fresh:
            self._all = None
        if self._all is None:
            cached = None if fresh else self._load()
            if cached is not None:
                self._all = cached
            else:
                self._all = self._fetch()
                self._fresh = True
                self._save(self._all)
        return self._all

    def resolve(self, text: str) -> ResourceType:
        """The type a user means by `text`: `is`, `imagestream`, `ImageStream`,
        `imagestreams.image.openshift.io`, `rolebindings.rbac`..."""
        found = self._resolve(text, self.all())
        if found is None and not self._fresh:
            found = self._resolve(text, self.all(fresh=True))  # the cache may be stale
        if found is None:
            raise CliError(f'the server doesn\'t have a resource type "{text}"')
        return found

    @staticmethod
    def _resolve(text: str, types: list[ResourceType]) -> ResourceType | None:
        wanted = text.strip().lower()
        if not wanted:
            raise CliError("you must specify the type of resource")
        name, _, group = wanted.partition(".")
        candidates = [t for t in types if name in t.names()]
        if group:
            candidates = [
                t
                for t in candidates
                if t.group == group
                or t.group.startswith(f"{group}.")
                or f"{t.version}.{t.group}" == group
                or (not t.group and group == t.version)
            ]
        # Like kubectl: a plural beats a singular, which beats a short name, then the kind.
        for rank in range(4):
            for candidate in candidates:
                names = (
                    (candidate.plural,),
                    (candidate.singular,),
                    candidate.short_names,
                    (candidate.kind.lower(),),
                )[rank]
                if name in names:
                    return candidate
        return None

    def for_kind(self, api_version: str, kind: str) -> ResourceType:
        """The resource type of objects with this apiVersion and kind (from a manifest)."""
        group, _, version = api_version.rpartition("/")
        for fresh in (False, True):
            if fresh and self._fresh:
                break
            for candidate in self.all(fresh):
                if (candidate.group, candidate.version, candidate.kind) == (group, version, kind):
                    return candidate
            if not any(t.group == group and t.version == version for t in self.all(fresh)):
                # A version the server prefers less than another: ask that version directly.
                path = f"/apis/{group}/{version}" if group else f"/api/{version}"
                try:
                    listed = _types(group, version, self.client.get(path))
                except ApiFailure as failure:
                    if failure.code != 404:
                        raise
                    listed = []
                for candidate in listed:
                    if candidate.kind == kind:
                        return candidate
        raise CliError(f'no matches for kind "{kind}" in version "{api_version}"')
