"""The kinds the API serves, and the hooks through which each one differs from the generic."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .meta import Object, subdomain_problem
from .shapes import Shape

if TYPE_CHECKING:
    from .resources import Resource

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    cell: Callable[[Object], Any]
    description: str = ""
    priority: int = 0  # 1: shown only with -o wide


class Strategy:
    """Defaults, validation and computed fields of a kind; the base does nothing special."""

    field_selectors: frozenset[str] = frozenset({"metadata.name", "metadata.namespace"})

    def name_problem(self, name: str) -> str | None:
        return subdomain_problem(name)

    def prepare_create(self, obj: Object) -> None:
        """Set defaults and drop what a client may not set on create (e.g. status)."""

    def prepare_update(self, new: Object, old: Object) -> None:
        """Carry over what an update may not change (e.g. status on the main resource)."""

    def validate(self, obj: Object) -> list[tuple[str, str]]:
        """(field, message) of every problem; empty when the object is valid."""
        return []

    def columns(self) -> Sequence[Column]:
        return ()


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: tuple[str, ...] = ALL_VERBS
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    strategy: Strategy = field(default_factory=Strategy)
    subresources: tuple[str, ...] = ()
    # The fields the kind has, for strict validation and OpenAPI; None: anything goes.
    shape: Shape | None = None
    # A DELETE answers the deleted object (a Namespace, as Kubernetes), else a Status.
    delete_answers_object: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """The key of the kind in the object store: plural.group."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


class KindRegistry:
    def __init__(self) -> None:
        self._kinds: dict[tuple[str, str, str], Kind] = {}
        self._resources: dict[tuple[str, str, str], Resource] = {}
        # What resources run in the background (imports of spec tags), stopped with the app.
        self.closers: list[Callable[[], Awaitable[None]]] = []

    def add(self, kind: Kind, resource: Resource) -> None:
        key = (kind.group, kind.version, kind.plural)
        self._kinds[key] = kind
        self._resources[key] = resource

    def find(self, group: str, version: str, plural: str) -> tuple[Kind, Resource] | None:
        key = (group, version, plural)
        kind = self._kinds.get(key)
        return (kind, self._resources[key]) if kind else None

    def by_kind(self, group: str, kind_name: str) -> Kind | None:
        for kind in self._kinds.values():
            if kind.group == group and kind.kind == kind_name:
                return kind
        return None

    def all(self) -> list[Kind]:
        return list(self._kinds.values())

    def groups(self) -> dict[str, list[str]]:
        """Group name to its versions, in the order kinds were added."""
        found: dict[str, list[str]] = {}
        for kind in self._kinds.values():
            versions = found.setdefault(kind.group, [])
            if kind.version not in versions:
                versions.append(kind.version)
        return found
