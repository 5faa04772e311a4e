"""How the API reads and writes the objects of a kind: the generic stored resource, which
virtual kinds (projects, reviews, image stream tags) replace where they differ."""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from ..auth.resources import NAMESPACES
from ..auth.user import UserInfo
from ..db.objects import (
    AlreadyExists,
    Conflict,
    Key,
    NotFound,
    ObjectStore,
    Page,
    Transaction,
)
from .errors import ApiError, already_exists, conflict, invalid, not_found
from .kinds import Kind
from .meta import Object, generate_name, new_uid, now


@dataclass(frozen=True)
class Call:
    """One API request, as a resource sees it."""

    user: UserInfo
    namespace: str  # "" for cluster-scoped kinds and for lists across all namespaces
    dry_run: bool = False
    subresource: str = ""  # "status": an update changes the status only


@dataclass(frozen=True)
class ListQuery:
    """Which part of a list a request wants: the objects that `matches` (its selectors), after
    the position `after` (namespace, name) of a continued list, at most `limit` (0: all)."""

    matches: Callable[[Object], bool] | None = None
    after: tuple[str, str] | None = None
    limit: int = 0


def position(obj: Object) -> tuple[str, str]:
    """Where an object stands in a list: lists are in (namespace, name) order."""
    meta = obj.get("metadata", {})
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def page_of(items: list[Object], version: int, query: ListQuery) -> Page:
    """The page `query` names of a list made whole in memory (kinds computed per caller)."""
    chosen = sorted(
        (item for item in items if query.matches is None or query.matches(item)), key=position
    )
    if query.after is not None:
        after = query.after
        chosen = [item for item in chosen if position(item) > after]
    if query.limit and len(chosen) > query.limit:
        return Page(chosen[: query.limit], version, more=True)
    return Page(chosen, version, more=False)


def _same(new: Object, old: Object) -> bool:
    def without_version(obj: Object) -> Object:
        meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
        return {**obj, "metadata": meta}

    return without_version(new) == without_version(old)


def _spec_of(obj: Object) -> Any:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Resource:
    """The generic behaviour: objects kept as they are in the object store."""

    def __init__(self, kind: Kind, store: ObjectStore) -> None:
        self.kind = kind
        self.store = store

    def transaction(self, call: Call) -> AbstractAsyncContextManager[Transaction]:
        """The write transaction of `call`: rolled back at its end when the call is a dry run."""
        return self.store.transaction(dry_run=call.dry_run)

    # Keys and presentation

    def key(self, namespace: str, name: str) -> Key:
        return Key(self.kind.resource, namespace if self.kind.namespaced else "", name)

    def watched(self) -> list[str]:
        """The object-store resources whose events feed a watch of this kind."""
        return [self.kind.resource]

    async def present(self, call: Call, obj: Object) -> Object:
        """The object as served; computed fields are filled in here."""
        return obj

    async def visible_to(self, call: Call, obj: Object) -> bool:
        """Whether a watcher allowed to watch the kind sees this stored object's events; kinds
        whose lists are filtered per caller (projects, own tokens) filter their events too."""
        return True

    def _missing(self, name: str) -> ApiError:
        return not_found(self.kind.group, self.kind.plural, name)

    # Reads

    async def get(self, call: Call, name: str) -> Object:
        obj = await self.store.get(self.key(call.namespace, name))
        if obj is None:
            raise self._missing(name)
        return await self.present(call, obj)

    async def present_many(self, call: Call, objs: list[Object]) -> list[Object]:
        """A page of objects as served: kinds that compute fields read them for all at once."""
        return [await self.present(call, obj) for obj in objs]

    async def list_page(self, call: Call, query: ListQuery) -> Page:
        """One page of the list, read from the store by its key: what a page costs does not
        grow with the list."""
        namespace = call.namespace if self.kind.namespaced and call.namespace else None
        page = await self.store.page(
            self.kind.resource,
            namespace,
            after=query.after,
            limit=query.limit,
            matches=query.matches,
        )
        if self.serves_stored():
            return page
        return await self.present_page(call, page)

    async def present_page(self, call: Call, page: Page) -> Page:
        """A page of stored objects as served; `encoded` too where the kind knows it."""
        return Page(await self.present_many(call, page.items), page.version, page.more)

    def serves_stored(self) -> bool:
        """Whether this kind serves its objects as stored (no field computed on the way out),
        so that a list may be written from their stored encoding."""
        kind = type(self)
        return kind.present is Resource.present and kind.present_many is Resource.present_many

    def shows_every_event(self) -> bool:
        """Whether every watcher allowed to watch the kind sees all of its events (no
        `visible_to` of its own)."""
        return type(self).visible_to is Resource.visible_to

    async def list(self, call: Call) -> tuple[list[Object], int]:
        page = await self.list_page(call, ListQuery())
        return page.items, page.version

    # Writes

    def new_object(self, call: Call, obj: Object) -> Object:
        """Fill in the metadata every new object gets, and validate it."""
        obj = copy.deepcopy(obj)
        obj["apiVersion"], obj["kind"] = self.kind.api_version, self.kind.kind
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generate_name(meta["generateName"])
        if self.kind.namespaced:
            meta["namespace"] = call.namespace
        else:
            meta.pop("namespace", None)
        for server_field in ("resourceVersion", "deletionTimestamp", "selfLink"):
            meta.pop(server_field, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = now()
        meta["generation"] = 1
        if "status" in self.kind.subresources:
            obj.pop("status", None)  # the status is the server's to set, through /status
        self.kind.strategy.prepare_create(obj)
        self.check(obj)
        return obj

    def check(self, obj: Object) -> None:
        name = obj["metadata"].get("name", "")
        problems = []
        name_problem = self.kind.strategy.name_problem(name)
        if name_problem:
            problems.append(("metadata.name", name_problem))
        problems += self.kind.strategy.validate(obj)
        if problems:
            raise invalid(self.kind.kind, self.kind.group, name, problems)

    async def create(self, call: Call, obj: Object) -> Object:
        obj = self.new_object(call, obj)
        async with self.transaction(call) as tx:
            created = await self.create_in(tx, obj)
        return await self.present(call, created)

    async def create_in(self, tx: Transaction, obj: Object) -> Object:
        meta = obj["metadata"]
        namespace = meta.get("namespace", "")
        if self.kind.namespaced and await tx.get(Key(NAMESPACES, "", namespace)) is None:
            raise not_found("", "namespaces", namespace)
        try:
            return await tx.create(self.key(meta.get("namespace", ""), meta["name"]), obj)
        except AlreadyExists:
            raise already_exists(self.kind.group, self.kind.plural, meta["name"]) from None

    async def update(self, call: Call, name: str, obj: Object) -> Object:
        key = self.key(call.namespace, name)
        async with self.transaction(call) as tx:
            old = await tx.get(key)
            if old is None:
                raise self._missing(name)
            new = self._status_update(call, self.merge_update(old, obj), old)
            wanted = obj.get("metadata", {}).get("resourceVersion")
            if wanted in (None, old["metadata"].get("resourceVersion")) and _same(new, old):
                # As Kubernetes: an update that changes nothing writes nothing, and the
                # resourceVersion stays (watchers hear of nothing either).
                return await self.present(call, old)
            await self.admit_update(tx, old, new)
            try:
                updated = await tx.update(key, new, int(wanted) if wanted else None)
            except Conflict:
                raise conflict(self.kind.group, self.kind.plural, name) from None
            except ValueError:
                raise conflict(self.kind.group, self.kind.plural, name) from None
        return await self.present(call, updated)

    async def admit_update(self, tx: Transaction, old: Object, new: Object) -> None:
        """Refuse an update that the project's quotas or limits do not allow (an ApiError);
        run in the update's transaction before it writes anything."""

    def merge_update(self, old: Object, obj: Object) -> Object:
        """The object an update stores: the new content with the server's metadata kept."""
        new = copy.deepcopy(obj)
        new["apiVersion"], new["kind"] = self.kind.api_version, self.kind.kind
        meta = new.setdefault("metadata", {})
        old_meta = old["metadata"]
        for kept in ("name", "namespace", "uid", "creationTimestamp", "generation"):
            if kept in old_meta:
                meta[kept] = old_meta[kept]
            else:
                meta.pop(kept, None)
        if _spec_of(new) != _spec_of(old):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        self.kind.strategy.prepare_update(new, old)
        self.check(new)
        return new

    def _status_update(self, call: Call, new: Object, old: Object) -> Object:
        """With a status subresource, an update of the object keeps its status, and an update
        of /status changes nothing but the status."""
        if "status" not in self.kind.subresources:
            return new
        if call.subresource == "status":
            result = copy.deepcopy(old)
            if new.get("status") is None:
                result.pop("status", None)
            else:
                result["status"] = new["status"]
            return result
        if old.get("status") is None:
            new.pop("status", None)
        else:
            new["status"] = old["status"]
        return new

    async def delete(self, call: Call, name: str, version: int | None = None) -> Object:
        key = self.key(call.namespace, name)
        try:
            async with self.transaction(call) as tx:
                deleted = await self.delete_in(tx, key, version)
        except NotFound:
            raise self._missing(name) from None
        except Conflict:
            raise conflict(self.kind.group, self.kind.plural, name) from None
        return await self.present(call, deleted)

    async def delete_in(self, tx: Transaction, key: Key, version: int | None = None) -> Object:
        return await tx.delete(key, version)
