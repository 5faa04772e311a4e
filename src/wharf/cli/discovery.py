"""Resource types as the server announces them (/api, /apis), and the names a user may give
them: plural, singular, kind, short names, and `type.group`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

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


class Discovery:
    def __init__(self, client: Client) -> None:
        self.client = client
        self._all: list[ResourceType] | None = None

    def all(self) -> list[ResourceType]:
        """Every resource type: the core group first, then the groups in the server's order."""
        if self._all is None:
            found = _types("", "v1", self.client.get("/api/v1"))
            groups = self.client.get("/apis").get("groups") or []
            for group in groups:
                preferred = group.get("preferredVersion") or (group.get("versions") or [{}])[0]
                version = str(preferred.get("version", ""))
                name = str(group.get("name", ""))
                if not name or not version:
                    continue
                found += _types(name, version, self.client.get(f"/apis/{name}/{version}"))
            self._all = found
        return self._all

    def resolve(self, text: str) -> ResourceType:
        """The type a user means by `text`: `is`, `imagestream`, `ImageStream`,
        `imagestreams.image.openshift.io`, `rolebindings.rbac`..."""
        wanted = text.strip().lower()
        if not wanted:
            raise CliError("you must specify the type of resource")
        name, _, group = wanted.partition(".")
        types = self.all()
        candidates = [t for t in types if name in t.names()]
        if group:
            candidates = [
                t
                for t in candidates
                if t.group == group
                or t.group.startswith(f"{group}.")
                or f"{t.version}.{t.group}" == group
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
        raise CliError(f'the server doesn\'t have a resource type "{text}"')

    def for_kind(self, api_version: str, kind: str) -> ResourceType:
        """The resource type of objects with this apiVersion and kind (from a manifest)."""
        group, _, version = api_version.rpartition("/")
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        if self._all is not None:
            listed = [t for t in self._all if t.group == group and t.version == version]
        else:
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
