"""authorization.k8s.io and authentication.k8s.io: the reviews (create-only questions)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..auth.authenticator import Authenticator
from ..auth.rbac import RbacAuthorizer
from ..auth.user import Attributes, UserInfo
from ..db.objects import ObjectStore
from .errors import bad_request
from .kinds import Kind, Strategy
from .meta import Object
from .resources import Call, Resource
from .shapes import ANY, B, S, Shape, top

Answer = Callable[[Call, Object], Awaitable[dict[str, Any]]]


class ReviewStrategy(Strategy):
    def name_problem(self, name: str) -> str | None:
        return None  # reviews are questions, never stored, and need no name


class ReviewResource(Resource):
    """A question asked by POST; the answer comes back in `status`, nothing is stored."""

    def __init__(self, kind: Kind, store: ObjectStore, answer: Answer) -> None:
        super().__init__(kind, store)
        self.answer = answer

    async def create(self, call: Call, obj: Object) -> Object:
        result: dict[str, Any] = {
            "apiVersion": self.kind.api_version,
            "kind": self.kind.kind,
            "metadata": {**(obj.get("metadata") or {}), "creationTimestamp": None},
            "spec": obj.get("spec") or {},
        }
        result["status"] = await self.answer(call, result["spec"])
        return result


def _user_info(user: UserInfo) -> dict[str, Any]:
    info: dict[str, Any] = {"username": user.name, "groups": list(user.groups)}
    if user.uid:
        info["uid"] = user.uid
    return info


def _attributes(user: UserInfo, spec: dict[str, Any], namespace: str | None = None) -> Attributes:
    resource = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if isinstance(resource, dict):
        return Attributes(
            user,
            str(resource.get("verb", "")),
            str(resource.get("group", "")),
            str(resource.get("resource", "")),
            str(resource.get("subresource", "")),
            namespace if namespace is not None else str(resource.get("namespace", "")),
            str(resource.get("name", "")),
        )
    if isinstance(non_resource, dict):
        return Attributes(
            user,
            str(non_resource.get("verb", "")),
            non_resource_path=str(non_resource.get("path", "")),
        )
    raise bad_request("exactly one of resourceAttributes or nonResourceAttributes must be set")


def reviews(
    store: ObjectStore, rbac: RbacAuthorizer, authenticator: Authenticator
) -> list[tuple[Kind, Resource]]:
    async def self_access(call: Call, spec: dict[str, Any]) -> dict[str, Any]:
        return await _decide(_attributes(call.user, spec))

    async def local_access(call: Call, spec: dict[str, Any]) -> dict[str, Any]:
        user = UserInfo(
            str(spec.get("user", "")), str(spec.get("uid", "")), tuple(spec.get("groups") or ())
        )
        return await _decide(_attributes(user, spec, call.namespace))

    async def subject_access(call: Call, spec: dict[str, Any]) -> dict[str, Any]:
        user = UserInfo(
            str(spec.get("user", "")), str(spec.get("uid", "")), tuple(spec.get("groups") or ())
        )
        return await _decide(_attributes(user, spec))

    async def _decide(attributes: Attributes) -> dict[str, Any]:
        allowed = await rbac.allowed(attributes)
        return {"allowed": allowed, **({"reason": "allowed by RBAC"} if allowed else {})}

    async def self_rules(call: Call, spec: dict[str, Any]) -> dict[str, Any]:
        rules = await rbac.rules_for(call.user, str(spec.get("namespace", "")))
        return {
            "resourceRules": [
                {
                    "verbs": sorted(r.verbs),
                    "apiGroups": sorted(r.api_groups),
                    "resources": sorted(r.resources),
                    **({"resourceNames": sorted(r.resource_names)} if r.resource_names else {}),
                }
                for r in rules
                if r.resources
            ],
            "nonResourceRules": [
                {"verbs": sorted(r.verbs), "nonResourceURLs": sorted(r.non_resource_urls)}
                for r in rules
                if r.non_resource_urls
            ],
            "incomplete": False,
        }

    async def token_review(call: Call, spec: dict[str, Any]) -> dict[str, Any]:
        user = await authenticator.user_for_token(str(spec.get("token", "")))
        if user is None:
            return {"authenticated": False, "error": "token is not valid"}
        return {"authenticated": True, "user": _user_info(user)}

    async def self_subject(call: Call, spec: dict[str, Any]) -> dict[str, Any]:
        return {"userInfo": _user_info(call.user)}

    access_spec: Shape = {
        "resourceAttributes": {
            "namespace": S,
            "verb": S,
            "group": S,
            "version": S,
            "resource": S,
            "subresource": S,
            "name": S,
            "fieldSelector": ANY,
            "labelSelector": ANY,
        },
        "nonResourceAttributes": {"path": S, "verb": S},
        "user": S,
        "groups": [S],
        "uid": S,
        "extra": ANY,
    }
    status: Shape = {"allowed": B, "denied": B, "reason": S, "evaluationError": S}
    specs: dict[str, Shape] = {
        "SelfSubjectRulesReview": {"namespace": S},
        "TokenReview": {"token": S, "audiences": [S]},
    }
    authz = "authorization.k8s.io"
    authn = "authentication.k8s.io"
    create_only = ("create",)
    table = [
        ("SelfSubjectAccessReview", "selfsubjectaccessreviews", False, self_access, authz),
        ("SubjectAccessReview", "subjectaccessreviews", False, subject_access, authz),
        ("LocalSubjectAccessReview", "localsubjectaccessreviews", True, local_access, authz),
        ("SelfSubjectRulesReview", "selfsubjectrulesreviews", False, self_rules, authz),
        ("TokenReview", "tokenreviews", False, token_review, authn),
        ("SelfSubjectReview", "selfsubjectreviews", False, self_subject, authn),
    ]
    found: list[tuple[Kind, Resource]] = []
    for kind_name, plural, namespaced, answer, group in table:
        kind = Kind(
            group,
            "v1",
            kind_name,
            plural,
            namespaced=namespaced,
            verbs=create_only,
            strategy=ReviewStrategy(),
            shape=top(
                spec=specs.get(kind_name, ANY) if "Access" not in kind_name else access_spec,
                status=status if "Access" in kind_name else ANY,
            ),
        )
        found.append((kind, ReviewResource(kind, store, answer)))

    return found
