"""project.openshift.io/v1: Project (a view of a Namespace) and ProjectRequest, through which a
user makes a project of their own, with the service accounts and bindings every project gets."""

from __future__ import annotations

import copy
from typing import Any

from ..auth.rbac import RbacAuthorizer
from ..auth.resources import NAMESPACES
from ..auth.user import Attributes
from ..db.objects import Key, ObjectStore, Page, Transaction
from .errors import ApiError, already_exists
from .kinds import Column, Kind, Strategy
from .meta import Object, label_name_problem, new_uid, now
from .resources import Call, ListQuery, Resource, page_of
from .shapes import S, top

REQUESTER = "openshift.io/requester"
DISPLAY_NAME = "openshift.io/display-name"
DESCRIPTION = "openshift.io/description"


class ProjectStrategy(Strategy):
    def name_problem(self, name: str) -> str | None:
        return label_name_problem(name)

    def columns(self) -> list[Column]:
        return [
            Column(
                "Display Name",
                "string",
                lambda o: (o["metadata"].get("annotations") or {}).get(DISPLAY_NAME, ""),
            ),
            Column("Status", "string", lambda o: o.get("status", {}).get("phase", "")),
        ]


def project_of(namespace: Object) -> Object:
    project = copy.deepcopy(namespace)
    project["apiVersion"], project["kind"] = "project.openshift.io/v1", "Project"
    return project


def namespace_of(project: Object) -> Object:
    namespace = copy.deepcopy(project)
    namespace["apiVersion"], namespace["kind"] = "v1", "Namespace"
    return namespace


class ProjectResource(Resource):
    """Projects are namespaces seen through project.openshift.io: stored once, as namespaces."""

    def __init__(
        self, kind: Kind, store: ObjectStore, namespaces: Resource, rbac: RbacAuthorizer
    ) -> None:
        super().__init__(kind, store)
        self.namespaces = namespaces
        self.rbac = rbac

    def key(self, namespace: str, name: str) -> Key:
        return Key(NAMESPACES, "", name)

    def watched(self) -> list[str]:
        return [NAMESPACES]

    async def present(self, call: Call, obj: Object) -> Object:
        return project_of(obj)

    async def list(self, call: Call) -> tuple[list[Object], int]:
        items, version = await self.store.items(NAMESPACES)
        everything = Attributes(call.user, "list", "", "namespaces")
        if not await self.rbac.allowed(everything):
            items = [item for item in items if await self.visible(call, item["metadata"]["name"])]
        return [project_of(item) for item in items], version

    async def list_page(self, call: Call, query: ListQuery) -> Page:
        # Made per caller in memory: paged there too.
        return page_of(*await self.list(call), query)

    async def visible_to(self, call: Call, obj: Object) -> bool:
        if await self.rbac.allowed(Attributes(call.user, "list", "", "namespaces")):
            return True
        return await self.visible(call, obj["metadata"]["name"])

    async def visible(self, call: Call, name: str) -> bool:
        for group, resource in (("project.openshift.io", "projects"), ("", "namespaces")):
            if await self.rbac.allowed(
                Attributes(call.user, "get", group, resource, "", name, name)
            ):
                return True
        return False

    async def create(self, call: Call, obj: Object) -> Object:
        created = await self.namespaces.create(call, namespace_of(obj))
        return project_of(created)

    async def update(self, call: Call, name: str, obj: Object) -> Object:
        return project_of(await self.namespaces.update(call, name, namespace_of(obj)))

    async def delete(self, call: Call, name: str, version: int | None = None) -> Object:
        return project_of(await self.namespaces.delete(call, name, version))


def _binding(namespace: str, name: str, role: str, subjects: list[dict[str, Any]]) -> Object:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": new_uid(),
            "creationTimestamp": now(),
            "generation": 1,
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    }


def _service_account(namespace: str, name: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": new_uid(),
            "creationTimestamp": now(),
        },
    }


def _sa(namespace: str, name: str) -> dict[str, Any]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


async def populate_project(tx: Transaction, namespace: str, admin: str | None) -> None:
    """What every project gets: its service accounts and their bindings, and its admin."""
    for account in ("builder", "deployer", "default"):
        await tx.create(
            Key("serviceaccounts", namespace, account), _service_account(namespace, account)
        )
    bindings = [
        _binding(
            namespace,
            "system:image-pullers",
            "system:image-puller",
            [
                {
                    "kind": "Group",
                    "apiGroup": "rbac.authorization.k8s.io",
                    "name": f"system:serviceaccounts:{namespace}",
                }
            ],
        ),
        _binding(
            namespace, "system:image-builders", "system:image-builder", [_sa(namespace, "builder")]
        ),
        _binding(namespace, "system:deployers", "system:deployer", [_sa(namespace, "deployer")]),
    ]
    if admin:
        bindings.append(
            _binding(
                namespace,
                "admin",
                "admin",
                [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": admin}],
            )
        )
    for binding in bindings:
        await tx.create(
            Key("rolebindings.rbac.authorization.k8s.io", namespace, binding["metadata"]["name"]),
            binding,
        )


def _check_requestable(name: Any) -> None:
    """As OpenShift: nobody requests the cluster's own projects or their prefixes."""
    problem = None
    if name in ("default", "openshift"):
        problem = f'cannot request a project with the name "{name}"'
    elif isinstance(name, str) and name.startswith(("kube-", "openshift-")):
        problem = f'cannot request a project starting with "{name.split("-")[0]}-"'
    if problem:
        raise ApiError(
            403,
            f'projectrequests.project.openshift.io "{name}" is forbidden: {problem}',
            "Forbidden",
            {"name": name, "group": "project.openshift.io", "kind": "projectrequests"},
        )


class ProjectRequestResource(Resource):
    """POST-only: makes the namespace, its accounts and bindings in one transaction."""

    def __init__(self, kind: Kind, store: ObjectStore, namespaces: Resource) -> None:
        super().__init__(kind, store)
        self.namespaces = namespaces

    async def create(self, call: Call, obj: Object) -> Object:
        meta = obj.get("metadata") or {}
        name = meta.get("name", "")
        _check_requestable(name)
        annotations = {REQUESTER: call.user.name}
        for field, annotation in (("displayName", DISPLAY_NAME), ("description", DESCRIPTION)):
            if obj.get(field):
                annotations[annotation] = str(obj[field])
        namespace = self.namespaces.new_object(
            call,
            {
                "metadata": {
                    "name": name,
                    "annotations": annotations,
                    "labels": meta.get("labels") or {},
                }
            },
        )
        try:
            async with self.transaction(call) as tx:
                created = await self.namespaces.create_in(tx, namespace)
                await populate_project(tx, name, call.user.name)
        except ApiError as exc:
            if exc.reason == "AlreadyExists":
                raise already_exists("project.openshift.io", "projectrequests", name) from None
            raise
        return project_of(created)


PROJECT_SHAPE = top(spec={"finalizers": [S]}, status={"phase": S})

PROJECT = Kind(
    "project.openshift.io",
    "v1",
    "Project",
    "projects",
    namespaced=False,
    verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    strategy=ProjectStrategy(),
    shape=PROJECT_SHAPE,
)
PROJECT_REQUEST = Kind(
    "project.openshift.io",
    "v1",
    "ProjectRequest",
    "projectrequests",
    namespaced=False,
    verbs=("create", "list"),
    strategy=ProjectStrategy(),
    shape=top(displayName=S, description=S),
)
