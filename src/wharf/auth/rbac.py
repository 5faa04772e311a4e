"""Role-based access control: one evaluator for the API and the registry alike."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..db.objects import ObjectStore
from .user import Attributes, UserInfo

RBAC = "rbac.authorization.k8s.io"
CLUSTER_ROLES = f"clusterroles.{RBAC}"
CLUSTER_ROLE_BINDINGS = f"clusterrolebindings.{RBAC}"
ROLES = f"roles.{RBAC}"
ROLE_BINDINGS = f"rolebindings.{RBAC}"
RBAC_RESOURCES = (CLUSTER_ROLES, CLUSTER_ROLE_BINDINGS, ROLES, ROLE_BINDINGS)

Object = dict[str, Any]


def _set(values: Iterable[str] | None) -> frozenset[str]:
    return frozenset(values or ())


@dataclass(frozen=True, slots=True)
class Rule:
    verbs: frozenset[str]
    api_groups: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    resource_names: frozenset[str] = frozenset()
    non_resource_urls: frozenset[str] = frozenset()

    @classmethod
    def of(cls, rule: Mapping[str, Any]) -> Rule:
        return cls(
            _set(rule.get("verbs")),
            _set(rule.get("apiGroups")),
            _set(rule.get("resources")),
            _set(rule.get("resourceNames")),
            _set(rule.get("nonResourceURLs")),
        )

    def allows(self, attributes: Attributes) -> bool:
        if not _has(self.verbs, attributes.verb):
            return False
        if attributes.non_resource_path is not None:
            return any(
                _url_matches(url, attributes.non_resource_path) for url in self.non_resource_urls
            )
        if not _has(self.api_groups, attributes.api_group):
            return False
        if not self._has_resource(attributes.resource, attributes.subresource):
            return False
        return not self.resource_names or attributes.name in self.resource_names

    def _has_resource(self, resource: str, subresource: str) -> bool:
        if "*" in self.resources:
            return True
        if not subresource:
            return resource in self.resources
        return (
            f"{resource}/{subresource}" in self.resources
            or f"{resource}/*" in self.resources
            or f"*/{subresource}" in self.resources
        )

    def expand(self) -> Iterable[tuple[str, str, str, str]]:
        """Every (verb, group, resource or URL, name) this rule grants, wildcards kept as '*'."""
        for verb in self.verbs:
            for url in self.non_resource_urls:
                yield verb, "", url, "\0url"
            for group in self.api_groups:
                for resource in self.resources:
                    for name in self.resource_names or ("",):
                        yield verb, group, resource, name


def _has(values: frozenset[str], value: str) -> bool:
    return "*" in values or value in values


def _url_matches(pattern: str, path: str) -> bool:
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return pattern == path


def covers(owned: Iterable[Rule], wanted: Rule) -> bool:
    """Whether `owned` grants everything `wanted` grants: the test against escalation."""
    owned = list(owned)
    for verb, group, resource, name in wanted.expand():
        if name == "\0url":
            if not any(
                _has(o.verbs, verb) and any(_url_matches(u, resource) for u in o.non_resource_urls)
                for o in owned
            ):
                return False
            continue
        resource_name, _, sub = resource.partition("/")
        attributes = Attributes(UserInfo(""), verb, group, resource_name, sub, "", name)
        if not any(_grants(o, attributes) for o in owned):
            return False
    return True


def _grants(owned: Rule, attributes: Attributes) -> bool:
    # A '*' asked for is only covered by a '*' held; Rule.allows treats that naturally, except
    # for names: a rule without names covers any name, a named rule only its names.
    if attributes.name == "" and owned.resource_names:
        return False
    return owned.allows(attributes)


def subject_matches(subject: Mapping[str, Any], user: UserInfo, binding_namespace: str) -> bool:
    kind = subject.get("kind")
    name = subject.get("name", "")
    if kind == "User":
        return bool(name == user.name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user.name == f"system:serviceaccount:{namespace}:{name}"
    return False


def _labels_match(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    wanted = selector.get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in wanted.items())


class Snapshot:
    """All RBAC objects at one resourceVersion, indexed for fast decisions."""

    def __init__(
        self,
        cluster_roles: list[Object],
        cluster_bindings: list[Object],
        roles: list[Object],
        bindings: list[Object],
    ) -> None:
        self.cluster_roles = self._resolve_aggregation(cluster_roles)
        self.roles = {
            (r["metadata"].get("namespace", ""), r["metadata"]["name"]): [
                Rule.of(x) for x in r.get("rules") or []
            ]
            for r in roles
        }
        self.cluster_bindings = cluster_bindings
        self.bindings: dict[str, list[Object]] = {}
        for binding in bindings:
            self.bindings.setdefault(binding["metadata"].get("namespace", ""), []).append(binding)
        self._cache: dict[tuple[str, tuple[str, ...], str], list[Rule]] = {}
        # Decisions, remembered for as long as this snapshot serves: every registry request
        # asks the same few questions, and a user's rules can be dozens to walk.
        self._decisions: dict[tuple[object, ...], bool] = {}

    def _resolve_aggregation(self, cluster_roles: list[Object]) -> dict[str, list[Rule]]:
        self._all_cluster_roles = cluster_roles
        return {r["metadata"]["name"]: self.aggregate(r) for r in cluster_roles}

    def aggregate(self, role: Object) -> list[Rule]:
        """The rules of a cluster role, with those of the roles its aggregationRule selects,
        and of the roles those select in turn (admin aggregates edit, which aggregates view)."""
        return [Rule.of(x) for x in self.aggregated_rules(role)]

    def aggregated_rules(self, role: Object) -> list[Object]:
        """The rule objects `aggregate` reads, each once: what Kubernetes' aggregation
        controller would have written into the role."""
        rules: list[Object] = []
        for rule in self._aggregated(role):
            if rule not in rules:
                rules.append(rule)
        return rules

    def _aggregated(self, role: Object) -> list[Object]:
        rules = list(role.get("rules") or [])
        seen = {role["metadata"].get("name")}
        pending = [role]
        while pending:
            current = pending.pop()
            selectors = (current.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
            for other in self._all_cluster_roles if selectors else ():
                name = other["metadata"]["name"]
                labels = other["metadata"].get("labels") or {}
                if name not in seen and any(_labels_match(s, labels) for s in selectors):
                    seen.add(name)
                    rules += other.get("rules") or []
                    pending.append(other)
        return rules

    def role_rules(self, ref: Mapping[str, Any], namespace: str) -> list[Rule]:
        """The rules a roleRef grants; a missing role grants nothing."""
        if ref.get("kind") == "ClusterRole":
            return self.cluster_roles.get(ref.get("name", ""), [])
        return self.roles.get((namespace, ref.get("name", "")), [])

    def allowed(self, attributes: Attributes) -> bool:
        user = attributes.user
        key = (
            user.name,
            user.groups,
            attributes.verb,
            attributes.api_group,
            attributes.resource,
            attributes.subresource,
            attributes.namespace,
            attributes.name,
            attributes.non_resource_path,
        )
        decision = self._decisions.get(key)
        if decision is None:
            rules = self.rules_for(user, attributes.namespace)
            decision = any(rule.allows(attributes) for rule in rules)
            if len(self._decisions) > 100_000:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    def rules_for(self, user: UserInfo, namespace: str) -> list[Rule]:
        key = (user.name, user.groups, namespace)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        rules: list[Rule] = []
        for binding in self.cluster_bindings:
            if any(subject_matches(s, user, "") for s in binding.get("subjects") or []):
                rules += self.role_rules(binding.get("roleRef") or {}, "")
        if namespace:
            for binding in self.bindings.get(namespace, []):
                if any(subject_matches(s, user, namespace) for s in binding.get("subjects") or []):
                    rules += self.role_rules(binding.get("roleRef") or {}, namespace)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = rules
        return rules


class RbacAuthorizer:
    """Decides from a snapshot of the RBAC objects, reloaded when any of them changed.

    Changes made through this process show at once; changes made by other processes sharing
    the database show within CHECK_SECONDS.
    """

    CHECK_SECONDS = 0.25

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._snapshot: Snapshot | None = None
        self._version = -1
        self._checked = 0.0
        self._writes_seen = -1
        self._lock = asyncio.Lock()

    def _current(self) -> Snapshot | None:
        """The snapshot, unless it is due for a check."""
        fresh = time.monotonic() - self._checked < self.CHECK_SECONDS
        if fresh and self.store.writes_to(RBAC_RESOURCES) == self._writes_seen:
            return self._snapshot
        return None

    async def snapshot(self) -> Snapshot:
        current = self._current()
        if current is not None:
            return current
        async with self._lock:
            # Whoever waited here while another request checked has a fresh snapshot now.
            current = self._current()
            if current is not None:
                return current
            writes = self.store.writes_to(RBAC_RESOURCES)
            version = await self.store.latest_version(RBAC_RESOURCES)
            if self._snapshot is None or version != self._version:
                lists = [(await self.store.items(r))[0] for r in RBAC_RESOURCES]
                self._snapshot = Snapshot(*lists)
                self._version = version
            self._checked = time.monotonic()
            self._writes_seen = writes
            return self._snapshot

    async def rules_for(self, user: UserInfo, namespace: str) -> list[Rule]:
        return (await self.snapshot()).rules_for(user, namespace)

    async def allowed(self, attributes: Attributes) -> bool:
        return (await self.snapshot()).allowed(attributes)
