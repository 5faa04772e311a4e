"""`wharf create -f`, `apply -f` and `delete`: objects from YAML or JSON files (several
documents, `List`s), or named on the command line."""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from ..kube import merge_patch
from .discovery import ResourceType
from .errors import ApiFailure, CliError
from .get import targets
from .state import NamespaceOption, Session, open_session

Manifest = tuple[str, dict[str, Any]]  # (where it came from, the object)
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields")

FilenameOption = typer.Option(
    "--filename", "-f", help="File, directory or `-` (stdin) of YAML or JSON objects"
)


def _read(source: str) -> list[tuple[str, str]]:
    if source == "-":
        return [("STDIN", sys.stdin.read())]
    path = Path(source)
    if not path.exists():
        raise CliError(f'the path "{source}" does not exist')
    files = (
        sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES)
        if path.is_dir()
        else [path]
    )
    texts = []
    for file in files:
        try:
            texts.append((str(file), file.read_text()))
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    return texts


def _expand(origin: str, document: Any) -> list[Manifest]:
    if document is None:
        return []
    if not isinstance(document, dict):
        raise CliError(f"error validating {origin}: a document is not an object")
    kind = str(document.get("kind") or "")
    if kind.endswith("List") and isinstance(document.get("items"), list):
        return [m for item in document["items"] for m in _expand(origin, item)]
    missing = [f"{field} not set" for field in ("apiVersion", "kind") if not document.get(field)]
    if missing:
        raise CliError(f'error validating "{origin}": [{", ".join(missing)}]')
    return [(origin, document)]


def read_manifests(sources: list[str]) -> list[Manifest]:
    if not sources:
        raise CliError("you must give at least one file with -f (or `-f -` for stdin)")
    manifests: list[Manifest] = []
    for source in sources:
        for origin, text in _read(source):
            try:
                documents = list(yaml.safe_load_all(text))
            except yaml.YAMLError as exc:
                raise CliError(f'error parsing "{origin}": {exc}') from None
            for document in documents:
                manifests += _expand(origin, document)
    if not manifests:
        raise CliError("no objects passed to the command")
    return manifests


def _namespace(session: Session, rtype: ResourceType, obj: dict[str, Any]) -> str | None:
    if not rtype.namespaced:
        return None
    given = (obj.get("metadata") or {}).get("namespace")
    if given and session.explicit_namespace and given != session.namespace:
        raise CliError(
            f'the namespace from the provided object "{given}" does not match the namespace '
            f"\"{session.namespace}\". You must pass '--namespace={given}' to perform this "
            "operation."
        )
    return str(given or session.namespace)


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _each(
    session: Session,
    manifests: list[Manifest],
    action: Callable[[ResourceType, str | None, dict[str, Any]], str],
) -> None:
    """Run `action` on every object, print what it says, and fail at the end if any failed."""
    errors = []
    for _origin, obj in manifests:
        try:
            rtype = session.discovery.for_kind(str(obj["apiVersion"]), str(obj["kind"]))
            line = action(rtype, _namespace(session, rtype, obj), obj)
            if line:
                typer.echo(line)
        except CliError as exc:
            errors.append(exc.message)
    if errors:
        raise CliError("\nerror: ".join(errors))


def create_objects(session: Session, manifests: list[Manifest]) -> None:
    def create_one(rtype: ResourceType, namespace: str | None, obj: dict[str, Any]) -> str:
        created = session.client.post(rtype.path(namespace), obj)
        return f"{rtype.kind_name}/{_name(created) or _name(obj)} created"

    _each(session, manifests, create_one)


def apply(
    ctx: typer.Context,
    filename: Annotated[list[str], FilenameOption],
    namespace: Annotated[str | None, NamespaceOption] = None,
) -> None:
    """Create objects from files, or update those that exist to match.

    An existing object gets a JSON merge patch of the file's content."""
    manifests = read_manifests(filename)
    session = open_session(ctx, namespace)

    def apply_one(rtype: ResourceType, ns: str | None, obj: dict[str, Any]) -> str:
        name = _name(obj)
        if not name:
            raise CliError("resource name may not be empty")
        try:
            current = session.client.get(rtype.path(ns, name))
        except ApiFailure as failure:
            if failure.code != 404:
                raise
            session.client.post(rtype.path(ns), obj)
            return f"{rtype.kind_name}/{name} created"
        patch = copy.deepcopy(obj)
        meta = patch.get("metadata") or {}
        for server_field in SERVER_FIELDS:
            meta.pop(server_field, None)
        if merge_patch(current, patch) == current:
            return f"{rtype.kind_name}/{name} unchanged"
        session.client.patch(rtype.path(ns, name), patch)
        return f"{rtype.kind_name}/{name} configured"

    _each(session, manifests, apply_one)


def delete(
    ctx: typer.Context,
    args: Annotated[
        list[str] | None, typer.Argument(metavar="[TYPE NAME... | TYPE/NAME...]")
    ] = None,
    filename: Annotated[list[str] | None, FilenameOption] = None,
    namespace: Annotated[str | None, NamespaceOption] = None,
    ignore_not_found: Annotated[
        bool, typer.Option("--ignore-not-found", help="No error when an object does not exist")
    ] = False,
) -> None:
    """Delete objects named on the command line or in files."""
    if filename and args:
        raise CliError("give either TYPE NAME... or -f FILE, not both")
    if not filename and not args:
        raise CliError("you must give TYPE NAME..., TYPE/NAME... or -f FILE")
    manifests = read_manifests(filename) if filename else []
    session = open_session(ctx, namespace)

    def delete_one(rtype: ResourceType, ns: str | None, obj: dict[str, Any]) -> str:
        name = _name(obj)
        if not name:
            raise CliError("resource name may not be empty")
        try:
            session.client.delete(rtype.path(ns, name))
        except ApiFailure as failure:
            if failure.code == 404 and ignore_not_found:
                return ""
            raise
        return f'{rtype.kind_name} "{name}" deleted'

    if args:
        rtype, names = targets(session.discovery, args)
        if not names:
            raise CliError(f"you must name the {rtype.plural} to delete")
        errors = []
        ns = session.namespace if rtype.namespaced else None
        for name in names:
            try:
                line = delete_one(rtype, ns, {"metadata": {"name": name}})
            except CliError as exc:
                errors.append(exc.message)
                continue
            if line:
                typer.echo(line)
        if errors:
            raise CliError("\nerror: ".join(errors))
        return

    _each(session, manifests, delete_one)
