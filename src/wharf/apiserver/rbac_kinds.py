"""rbac.authorization.k8s.io/v1: roles and bindings, refusing escalation as Kubernetes does:
nobody creates a role or binding that grants more than they hold, unless they may `escalate`
(roles) or `bind` (bindings)."""

from __future__ import annotations

from ..auth.rbac import RbacAuthorizer, Rule, covers
from ..auth.user import Attributes
from ..db.objects import ObjectStore
from .errors import ApiError
from .kinds import Column, Kind, Strategy
from .meta import Object, path_segment_problem
from .resources import Call, Resource
from .shapes import ANY, MAP, S, top

RULE = {
    "verbs": [S],
    "apiGroups": [S],
    "resources": [S],
    "resourceNames": [S],
    "nonResourceURLs": [S],
}
SUBJECT = {"kind": S, "apiGroup": S, "name": S, "namespace": S}
ROLE_REF = {"kind": S, "apiGroup": S, "name": S}


class RbacStrategy(Strategy):
    def name_problem(self, name: str) -> str | None:
        return path_segment_problem(name)


class RoleStrategy(RbacStrategy):
    def validate(self, obj: Object) -> list[tuple[str, str]]:
        problems = []
        for index, rule in enumerate(obj.get("rules") or []):
            if not isinstance(rule, dict) or not rule.get("verbs"):
                problems.append(
                    (
                        f"rules[{index}].verbs",
                        "Required value: verbs must contain at least one value",
                    )
                )
            elif not rule.get("nonResourceURLs") and not rule.get("resources"):
                problems.append(
                    (
                        f"rules[{index}].resources",
                        "Required value: resource rules must supply at least one resource",
                    )
                )
        return problems


class BindingStrategy(RbacStrategy):
    def validate(self, obj: Object) -> list[tuple[str, str]]:
        problems = []
        ref = obj.get("roleRef") or {}
        if ref.get("kind") not in ("Role", "ClusterRole"):
            problems.append(("roleRef.kind", 'Unsupported value: must be "Role" or "ClusterRole"'))
        if not ref.get("name"):
            problems.append(("roleRef.name", "Required value"))
        for index, subject in enumerate(obj.get("subjects") or []):
            if subject.get("kind") not in ("User", "Group", "ServiceAccount"):
                problems.append(
                    (
                        f"subjects[{index}].kind",
                        'Unsupported value: must be "User", "Group" or "ServiceAccount"',
                    )
                )
            if not subject.get("name"):
                problems.append((f"subjects[{index}].name", "Required value"))
        return problems

    def prepare_update(self, new: Object, old: Object) -> None:
        if new.get("roleRef") != old.get("roleRef"):
            # Kubernetes makes roleRef immutable: a binding means one role for its whole life.
            raise ApiError(422, "roleRef: Invalid value: cannot change roleRef", "Invalid")

    def columns(self) -> list[Column]:
        return [
            Column(
                "Role",
                "string",
                lambda o: (
                    f"{o.get('roleRef', {}).get('kind', '')}/{o.get('roleRef', {}).get('name', '')}"
                ),
            )
        ]


class RbacResource(Resource):
    def __init__(self, kind: Kind, store: ObjectStore, rbac: RbacAuthorizer) -> None:
        super().__init__(kind, store)
        self.rbac = rbac

    async def _may(self, call: Call, verb: str, name: str) -> bool:
        attributes = Attributes(
            call.user, verb, "rbac.authorization.k8s.io", self.kind.plural, "", call.namespace, name
        )
        return await self.rbac.allowed(attributes)

    async def _granted(self, obj: Object) -> list[Rule]:
        raise NotImplementedError

    async def _check_escalation(self, call: Call, obj: Object) -> None:
        name = obj.get("metadata", {}).get("name", "")
        verb = "bind" if self.kind.kind.endswith("Binding") else "escalate"
        if await self._may(call, verb, name):
            return
        owned = await self.rbac.rules_for(call.user, call.namespace if self.kind.namespaced else "")
        if self.kind.namespaced:
            owned = owned + await self.rbac.rules_for(call.user, "")
        for rule in await self._granted(obj):
            if not covers(owned, rule):
                raise ApiError(
                    403,
                    f'{self.kind.plural}.rbac.authorization.k8s.io "{name}" is forbidden: user '
                    f'"{call.user.name}" is attempting to grant RBAC permissions not currently '
                    f"held: {_describe(rule)}",
                    "Forbidden",
                )

    async def create(self, call: Call, obj: Object) -> Object:
        await self._check_escalation(call, obj)
        return await super().create(call, obj)

    async def update(self, call: Call, name: str, obj: Object) -> Object:
        await self._check_escalation(call, obj)
        return await super().update(call, name, obj)


class RoleResource(RbacResource):
    async def present(self, call: Call, obj: Object) -> Object:
        # An aggregated cluster role shows the rules it grants, as Kubernetes' controller
        # writes them into the role.
        if (obj.get("aggregationRule") or {}).get("clusterRoleSelectors"):
            snapshot = await self.rbac.snapshot()
            return {**obj, "rules": snapshot.aggregated_rules(obj)}
        return obj

    async def _granted(self, obj: Object) -> list[Rule]:
        rules = [Rule.of(r) for r in obj.get("rules") or []]
        selectors = (obj.get("aggregationRule") or {}).get("clusterRoleSelectors")
        if selectors:
            snapshot = await self.rbac.snapshot()
            probe = {**obj, "rules": []}
            rules += snapshot.aggregate(probe)
        return rules


class BindingResource(RbacResource):
    async def _granted(self, obj: Object) -> list[Rule]:
        snapshot = await self.rbac.snapshot()
        namespace = obj.get("metadata", {}).get("namespace", "")
        return snapshot.role_rules(obj.get("roleRef") or {}, namespace)


def _describe(rule: Rule) -> str:
    return (
        f"{{APIGroups:{sorted(rule.api_groups)}, Resources:{sorted(rule.resources)}, "
        f"Verbs:{sorted(rule.verbs)}}}"
    )


_ROLE_SHAPE = top(
    rules=[RULE],
    aggregationRule={"clusterRoleSelectors": [{"matchLabels": MAP, "matchExpressions": [ANY]}]},
)
_BINDING_SHAPE = top(subjects=[SUBJECT], roleRef=ROLE_REF)

ROLE = Kind(
    "rbac.authorization.k8s.io",
    "v1",
    "Role",
    "roles",
    namespaced=True,
    strategy=RoleStrategy(),
    shape=_ROLE_SHAPE,
)
CLUSTER_ROLE = Kind(
    "rbac.authorization.k8s.io",
    "v1",
    "ClusterRole",
    "clusterroles",
    namespaced=False,
    strategy=RoleStrategy(),
    shape=_ROLE_SHAPE,
)
ROLE_BINDING = Kind(
    "rbac.authorization.k8s.io",
    "v1",
    "RoleBinding",
    "rolebindings",
    namespaced=True,
    strategy=BindingStrategy(),
    shape=_BINDING_SHAPE,
)
CLUSTER_ROLE_BINDING = Kind(
    "rbac.authorization.k8s.io",
    "v1",
    "ClusterRoleBinding",
    "clusterrolebindings",
    namespaced=False,
    strategy=BindingStrategy(),
    shape=_BINDING_SHAPE,
)
