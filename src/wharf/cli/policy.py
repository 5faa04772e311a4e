"""`wharf policy` and `wharf adm policy`: give roles to users, groups and service accounts, or
take them away, by editing RoleBindings and ClusterRoleBindings as oc does."""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from .client import Client
from .errors import ApiFailure, CliError
from .state import NamespaceOption, open_session

RBAC = "/apis/rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
SERVICE_ACCOUNT_USER = "system:serviceaccount:"
ATTEMPTS = 5

app = typer.Typer(
    no_args_is_help=True,
    help="Manage who may do what: roles bound to users and groups",
    rich_markup_mode=None,
)


@dataclass
class Change:
    """Which role, bound where (namespace None: cluster-wide), for which subjects."""

    role: str
    role_kind: str  # ClusterRole or Role
    namespace: str | None
    subjects: list[dict[str, Any]]
    targets: list[str]
    binding_name: str | None = None

    @property
    def bindings_path(self) -> str:
        if self.namespace is None:
            return f"{RBAC}/clusterrolebindings"
        return f"{RBAC}/namespaces/{self.namespace}/rolebindings"

    @property
    def binding_kind(self) -> str:
        return "ClusterRoleBinding" if self.namespace is None else "RoleBinding"

    @property
    def role_path(self) -> str:
        if self.role_kind == "Role":
            return f"{RBAC}/namespaces/{self.namespace}/roles/{self.role}"
        return f"{RBAC}/clusterroles/{self.role}"

    def message(self, operation: str) -> str:
        qualified = f"{self.role_kind.lower()}.{RBAC_GROUP}"
        if len(self.targets) == 1:
            shown = f'"{self.targets[0]}"'
        else:
            shown = "[" + " ".join(f'"{t}"' for t in self.targets) + "]"
        return f"{qualified}/{self.role} {operation}: {shown}"


def subjects_for(
    users: list[str], groups: list[str], service_accounts: list[str], namespace: str
) -> list[dict[str, Any]]:
    """Users named `system:serviceaccount:NS:NAME` are service accounts, as in oc."""
    subjects: list[dict[str, Any]] = []
    for user in users:
        if user.startswith(SERVICE_ACCOUNT_USER):
            sa_namespace, _, name = user[len(SERVICE_ACCOUNT_USER) :].partition(":")
            if not sa_namespace or not name:
                raise CliError(f"{user!r} is not a valid service account user name")
            subjects.append({"kind": "ServiceAccount", "name": name, "namespace": sa_namespace})
        else:
            subjects.append({"kind": "User", "apiGroup": RBAC_GROUP, "name": user})
    for group in groups:
        subjects.append({"kind": "Group", "apiGroup": RBAC_GROUP, "name": group})
    for name in service_accounts:
        if name.startswith(SERVICE_ACCOUNT_USER):
            raise CliError(
                "--serviceaccount (-z) should only be used with short-form serviceaccount names "
                "(e.g. `default`)"
            )
        subjects.append({"kind": "ServiceAccount", "name": name, "namespace": namespace})
    return subjects


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k, "") == b.get(k, "") for k in ("kind", "name", "namespace"))


def _has(subjects: list[dict[str, Any]], subject: dict[str, Any]) -> bool:
    return any(_same(s, subject) for s in subjects)


def _bindings(client: Client, change: Change) -> list[dict[str, Any]]:
    items = client.get(change.bindings_path).get("items") or []
    return sorted(items, key=lambda b: str(b.get("metadata", {}).get("name", "")))


def _for_role(bindings: list[dict[str, Any]], change: Change) -> list[dict[str, Any]]:
    return [
        b
        for b in bindings
        if (b.get("roleRef") or {}).get("name") == change.role
        and (b.get("roleRef") or {}).get("kind") == change.role_kind
    ]


def _unique_name(bindings: list[dict[str, Any]], base: str) -> str:
    taken = {str(b.get("metadata", {}).get("name", "")) for b in bindings}
    if base not in taken:
        return base
    index = 0
    while f"{base}-{index}" in taken:
        index += 1
    return f"{base}-{index}"


def _autoupdated(binding: dict[str, Any]) -> bool:
    annotations = binding.get("metadata", {}).get("annotations") or {}
    return bool(annotations.get(AUTOUPDATE) == "true")


def _warn_missing(client: Client, change: Change, subjects: list[dict[str, Any]]) -> None:
    checks = [("role", change.role_path)]
    for subject in subjects:
        kind, name = subject["kind"], subject["name"]
        if kind == "User":
            checks.append((f"User '{name}'", f"/apis/user.openshift.io/v1/users/{name}"))
        elif kind == "Group":
            checks.append((f"Group '{name}'", f"/apis/user.openshift.io/v1/groups/{name}"))
        else:
            path = f"/api/v1/namespaces/{subject['namespace']}/serviceaccounts/{name}"
            checks.append((f"ServiceAccount '{name}'", path))
    for what, path in checks:
        try:
            client.get(path)
        except ApiFailure as failure:
            if failure.code == 404:
                shown = f"role '{change.role}'" if what == "role" else what
                sys.stderr.write(f"Warning: {shown} not found\n")


def _new_binding(change: Change, name: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if change.namespace is not None:
        meta["namespace"] = change.namespace
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": change.binding_kind,
        "metadata": meta,
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": change.role_kind, "name": change.role},
        "subjects": [],
    }


def _add_once(client: Client, change: Change) -> None:
    bindings = _bindings(client, change)
    matching = _for_role(bindings, change)
    target: dict[str, Any] | None = None
    if change.binding_name:
        named = [b for b in bindings if b["metadata"]["name"] == change.binding_name]
        if named and named[0] not in matching:
            ref = named[0].get("roleRef") or {}
            raise CliError(
                f"rolebinding {change.binding_name} found for role {ref.get('name')} of kind "
                f"{ref.get('kind')}, not {change.role_kind} {change.role}"
            )
        target = named[0] if named else None
    else:
        for binding in matching:
            if all(_has(binding.get("subjects") or [], s) for s in change.subjects):
                return  # already bound
        # Edit a binding this command made (named after the role, as oc names them); leave
        # alone those made by others, such as a project's own `system:image-builders`.
        ours = re.compile(re.escape(change.role) + r"(-\d+)?")
        editable = [
            b for b in matching if ours.fullmatch(b["metadata"]["name"]) and not _autoupdated(b)
        ]
        editable.sort(key=lambda b: b["metadata"]["name"] != change.role)
        target = editable[0] if editable else None
    existing = list((target or {}).get("subjects") or [])
    new = [s for s in change.subjects if not _has(existing, s)]
    _warn_missing(client, change, new)
    if target is None:
        name = change.binding_name or _unique_name(bindings, change.role)
        binding = _new_binding(change, name)
        binding["subjects"] = new
        client.post(change.bindings_path, binding)
    else:
        target["subjects"] = existing + new
        client.put(f"{change.bindings_path}/{target['metadata']['name']}", target)


def _remove_once(client: Client, change: Change) -> None:
    bindings = _bindings(client, change)
    if change.binding_name:
        matching = [b for b in bindings if b["metadata"]["name"] == change.binding_name]
        if not matching:
            raise CliError(f'{change.binding_kind.lower()} "{change.binding_name}" not found')
        if not _for_role(matching, change):
            raise CliError(
                f"rolebinding {change.binding_name} does not bind {change.role_kind} {change.role}"
            )
    else:
        matching = _for_role(bindings, change)
    if not matching:
        raise CliError(
            f'unable to locate any {change.binding_kind} for {change.role_kind} "{change.role}"'
        )
    found = 0
    for binding in matching:
        subjects = binding.get("subjects") or []
        kept = [s for s in subjects if not _has(change.subjects, s)]
        if len(kept) == len(subjects):
            continue
        found += len(subjects) - len(kept)
        path = f"{change.bindings_path}/{binding['metadata']['name']}"
        annotations = binding.get("metadata", {}).get("annotations") or {}
        if kept or annotations.get(AUTOUPDATE) == "false":
            binding["subjects"] = kept
            client.put(path, binding)
        else:
            client.delete(path)
    if found == 0:
        raise CliError(f"unable to find target [{' '.join(change.targets)}]")


def _run(ctx: typer.Context, change: Change, adding: bool, namespace: str | None) -> None:
    session = open_session(ctx, namespace)
    for attempt in range(ATTEMPTS):
        try:
            (_add_once if adding else _remove_once)(session.client, change)
            break
        except ApiFailure as failure:
            # Somebody changed the bindings meanwhile: read them again and redo the change.
            if failure.code != 409 or attempt == ATTEMPTS - 1:
                raise
    typer.echo(change.message("added" if adding else "removed"))


def _namespaced_change(
    ctx: typer.Context,
    role: str,
    users: list[str],
    groups: list[str],
    service_accounts: list[str],
    namespace: str | None,
    role_namespace: str | None,
    binding_name: str | None,
) -> Change:
    session = open_session(ctx, namespace)
    binding_namespace = session.namespace
    if role_namespace and role_namespace != binding_namespace:
        raise CliError(
            f'role binding in namespace "{binding_namespace}" can\'t reference role in different '
            f'namespace "{role_namespace}"'
        )
    subjects = subjects_for(users, groups, service_accounts, binding_namespace)
    if not subjects:
        raise CliError("you must specify at least one user or service account")
    return Change(
        role,
        "Role" if role_namespace else "ClusterRole",
        binding_namespace,
        subjects,
        users + groups + service_accounts,
        binding_name,
    )


def _cluster_change(
    ctx: typer.Context,
    role: str,
    users: list[str],
    groups: list[str],
    service_accounts: list[str],
    binding_name: str | None,
) -> Change:
    namespace = open_session(ctx).namespace if service_accounts else ""
    subjects = subjects_for(users, groups, service_accounts, namespace)
    if not subjects:
        raise CliError("you must specify at least one user or service account")
    return Change(
        role, "ClusterRole", None, subjects, users + groups + service_accounts, binding_name
    )


Role = Annotated[str, typer.Argument(help="The role")]
Users = Annotated[
    list[str] | None,
    typer.Argument(help="Users (system:serviceaccount:NS:NAME for a service account)"),
]
Groups = Annotated[list[str], typer.Argument(help="Groups")]
ServiceAccounts = Annotated[
    list[str] | None,
    typer.Option("--serviceaccount", "-z", help="Service account of the current namespace"),
]
RoleNamespace = Annotated[
    str | None,
    typer.Option(help="Namespace of the Role to bind; default: bind a ClusterRole"),
]
BindingName = Annotated[
    str | None, typer.Option("--rolebinding-name", help="Name of the binding to edit or create")
]
Namespace = Annotated[str | None, NamespaceOption]


@dataclass(frozen=True)
class Verb:
    """One `policy` verb. Its name, as oc names it, says whether it adds or removes, where the
    binding is (the current project, or cluster-wide: `cluster-role`), and whom it names
    (users and service accounts, or groups)."""

    name: str
    help: str

    @property
    def adding(self) -> bool:
        return self.name.startswith("add-")

    @property
    def cluster(self) -> bool:
        return "-cluster-role-" in self.name

    @property
    def groups(self) -> bool:
        return self.name.endswith("-group")


VERBS = tuple(
    Verb(name, text)
    for name, text in {
        "add-role-to-user": "Add a role to users or service accounts for the current project.",
        "remove-role-from-user": (
            "Remove a role from users or service accounts in the current project."
        ),
        "add-role-to-group": "Add a role to groups for the current project.",
        "remove-role-from-group": "Remove a role from groups in the current project.",
        "add-cluster-role-to-user": (
            "Add a cluster role to users or service accounts, in every project."
        ),
        "remove-cluster-role-from-user": "Remove a cluster role from users or service accounts.",
        "add-cluster-role-to-group": "Add a cluster role to groups, in every project.",
        "remove-cluster-role-from-group": "Remove a cluster role from groups.",
    }.items()
)

# Every parameter a verb may take, in the order its help lists them.
PARAMETERS: dict[str, tuple[Any, Any]] = {
    "ctx": (typer.Context, inspect.Parameter.empty),
    "role": (Role, inspect.Parameter.empty),
    "users": (Users, None),
    "groups": (Groups, inspect.Parameter.empty),
    "service_accounts": (ServiceAccounts, None),
    "namespace": (Namespace, None),
    "role_namespace": (RoleNamespace, None),
    "rolebinding_name": (BindingName, None),
}


def _parameters(verb: Verb) -> list[str]:
    names = ["ctx", "role"]
    names += ["groups"] if verb.groups else ["users", "service_accounts"]
    names += [] if verb.cluster else ["namespace", "role_namespace"]
    return [*names, "rolebinding_name"]


def _command(verb: Verb) -> Callable[..., None]:
    """The verb's command: one body for all of them, shown to typer with the verb's own
    parameters only."""

    def command(
        ctx: typer.Context,
        role: str,
        users: list[str] | None = None,
        groups: list[str] | None = None,
        service_accounts: list[str] | None = None,
        namespace: str | None = None,
        role_namespace: str | None = None,
        rolebinding_name: str | None = None,
    ) -> None:
        subjects = (users or [], groups or [], service_accounts or [])
        if verb.cluster:
            change = _cluster_change(ctx, role, *subjects, rolebinding_name)
        else:
            change = _namespaced_change(
                ctx, role, *subjects, namespace, role_namespace, rolebinding_name
            )
        _run(ctx, change, verb.adding, None if verb.cluster else namespace)

    command.__name__ = verb.name.replace("-", "_")
    command.__doc__ = verb.help
    command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=PARAMETERS[name][0],
                default=PARAMETERS[name][1],
            )
            for name in _parameters(verb)
        ],
        return_annotation=None,
    )
    return command


for _verb in VERBS:
    app.command(_verb.name)(_command(_verb))
