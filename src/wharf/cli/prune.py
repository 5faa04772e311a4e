"""`wharf adm prune images`, as `oc adm prune images`: a dry run unless `--confirm`; what goes
is decided by wharf.images.prune and removed in this order: tag history items (an update of
each image stream's status), Image objects, layer links and manifest links in the registry,
then blobs (`DELETE /admin/blobs/<digest>`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import requests
import typer

from ..images.prune import InvalidReferences, Options, Plan, plan, summary
from ..kube import duration_seconds
from .client import USER_AGENT, ca_file
from .errors import ApiFailure, CliError
from .printers import align, write
from .registry import _verify, find_hosts
from .state import Session, open_session

IMAGE_API = "/apis/image.openshift.io/v1"

app = typer.Typer(no_args_is_help=True, help="Remove old objects", rich_markup_mode=None)

DRY_RUN = "Dry run enabled - no modifications will be made. Add --confirm to remove images"


def _list(session: Session, path: str) -> list[dict[str, Any]]:
    """Every item of a list, page by page."""
    items: list[dict[str, Any]] = []
    params = {"limit": "500"}
    while True:
        page = session.client.get(path, params=params)
        items += page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items
        params = {"limit": "500", "continue": token}


def _size_limits(session: Session) -> dict[str, int]:
    """Each project's smallest LimitRange `openshift.io/Image` max storage, in bytes."""
    from ..images.quantity import parse_quantity

    try:
        ranges = _list(session, "/api/v1/limitranges")
    except ApiFailure as failure:
        if failure.code == 404:
            return {}
        raise
    limits: dict[str, int] = {}
    for limit_range in ranges:
        namespace = (limit_range.get("metadata") or {}).get("namespace", "")
        for item in (limit_range.get("spec") or {}).get("limits") or []:
            storage = (item.get("max") or {}).get("storage")
            if item.get("type") != "openshift.io/Image" or storage is None:
                continue
            try:
                value = parse_quantity(str(storage))
            except ValueError:
                continue
            limits[namespace] = min(value, limits.get(namespace, value))
    return limits


class Registry:
    """The registry's deletion endpoints, called with the session's token."""

    def __init__(self, url: str, token: str, verify: str | bool) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.headers.update({"User-Agent": USER_AGENT, "Authorization": f"Bearer {token}"})
        self.verify = verify

    def delete(self, path: str) -> None:
        try:
            answer = self.http.delete(f"{self.url}{path}", verify=self.verify, timeout=60)
        except requests.exceptions.RequestException as exc:
            raise CliError(f"registry could not be contacted at {self.url}: {exc}") from None
        if answer.status_code in (200, 202, 204, 404):
            return  # 404: gone already (another pruner, or the GC)
        try:
            errors = answer.json().get("errors") or []
            message = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
        except (ValueError, AttributeError):
            message = ""
        raise CliError(f"{path}: {answer.status_code} {message or answer.reason}")


def _registry_url(session: Session, given: str | None) -> str:
    if given:
        return given if "://" in given else f"https://{given}"
    hosts = find_hosts(session)
    host = hosts.public or hosts.internal
    if not host:
        raise CliError(
            "unable to find the remote registry host: name it with --registry-url\n"
            "* Please provide a reachable route to the integrated registry using --registry-url."
        )
    return f"https://{host}"


def _print_plan(found: Plan) -> None:
    rows = [["ACTION", "OBJECT", "WHERE"]]
    rows += [["tag history item", h.image, f"{h.repository}:{h.tag}"] for h in found.history]
    rows += [["image", name, ""] for name in found.images]
    rows += [["layer link", digest, repository] for repository, digest in found.layer_links]
    rows += [["manifest link", digest, repository] for repository, digest in found.manifest_links]
    rows += [["blob", digest, ""] for digest in found.blobs]
    if len(rows) > 1:
        write(align(rows))


def carry_out(
    session: Session, found: Plan, streams: list[dict[str, Any]], registry: Registry | None
) -> list[str]:
    """Remove what `found` names, in oc's order; the errors, one per object that failed (the
    rest goes on, as oc's pruner does)."""
    errors: list[str] = []

    def attempt(what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except (ApiFailure, CliError) as exc:
            errors.append(f"{what}: {exc.message}")

    touched = {h.repository for h in found.history}
    for stream in streams:
        meta = stream["metadata"]
        repository = f"{meta['namespace']}/{meta['name']}"
        if repository not in touched:
            continue
        body = {
            "apiVersion": "image.openshift.io/v1",
            "kind": "ImageStream",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "status": found.kept_status(stream),
        }
        path = f"{IMAGE_API}/namespaces/{meta['namespace']}/imagestreams/{meta['name']}/status"
        attempt(f"image stream {repository}", partial(session.client.put, path, body))
    for name in found.images:
        attempt(f"image {name}", partial(_delete_image, session, name))
    if registry is not None:
        for repository, digest in found.layer_links:
            attempt(
                f"layer link {digest} in {repository}",
                partial(registry.delete, f"/v2/{repository}/blobs/{digest}"),
            )
        for repository, digest in found.manifest_links:
            attempt(
                f"manifest link {digest} in {repository}",
                partial(registry.delete, f"/v2/{repository}/manifests/{digest}"),
            )
        for digest in found.blobs:
            attempt(
                f"blob {digest}",
                partial(registry.delete, f"/admin/blobs/{quote(digest)}"),
            )
    return errors


def _delete_image(session: Session, name: str) -> None:
    try:
        session.client.delete(f"{IMAGE_API}/images/{name}")
    except ApiFailure as failure:
        if failure.code != 404:
            raise


def _go_bool(flag: str, text: str) -> bool:
    """A boolean flag as Go's flag package reads it: bare, or `--flag=false`."""
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise CliError(f'invalid argument "{text}" for "{flag}" flag: parse error')


def _duration(text: str) -> timedelta:
    try:
        return timedelta(seconds=duration_seconds(text))
    except ValueError:
        raise CliError(
            f'invalid argument "{text}" for "--keep-younger-than" flag: a duration such as '
            "30m, 1h or 24h0m0s"
        ) from None


@app.command("images")
def prune_images(
    ctx: typer.Context,
    confirm: Annotated[
        bool,
        typer.Option(
            "--confirm",
            help="Specify that image pruning should proceed. Defaults to false, displaying what "
            "would be deleted but not actually deleting anything.",
        ),
    ] = False,
    keep_tag_revisions: Annotated[
        int | None,
        typer.Option(
            "--keep-tag-revisions",
            help="Specify the number of image revisions for a tag in an image stream that will "
            "be preserved. (default 3)",
            show_default=False,
        ),
    ] = None,
    keep_younger_than: Annotated[
        str | None,
        typer.Option(
            "--keep-younger-than",
            help="Specify the minimum age of an image and its referrers for it to be considered "
            "a candidate for pruning. (default 60m)",
            show_default=False,
        ),
    ] = None,
    prune_over_size_limit: Annotated[
        bool,
        typer.Option(
            "--prune-over-size-limit",
            help="Specify if images which are exceeding LimitRanges (see 'openshift.io/Image'), "
            "specified in the same namespace, should be considered for pruning. This flag cannot "
            "be combined with --keep-younger-than nor --keep-tag-revisions.",
        ),
    ] = False,
    all_images: Annotated[
        str,
        typer.Option(
            "--all",
            metavar="true|false",
            help="Include images that were imported from external registries as candidates for "
            "pruning. If pruned, all the mirrored objects associated with them will also be "
            "removed from the integrated registry. (default true)",
            show_default=False,
        ),
    ] = "true",
    registry_url: Annotated[
        str | None,
        typer.Option(
            "--registry-url",
            help="The address to use when contacting the registry, instead of using the default "
            "value. This is useful if you can't resolve or reach the registry (e.g.; the default "
            "is a cluster-internal URL) but you do have an alternative route that works. "
            "Particular transport protocol can be enforced using '<scheme>://' prefix.",
        ),
    ] = None,
    certificate_authority: Annotated[
        Path | None,
        typer.Option(
            "--certificate-authority",
            help="The path to a certificate authority bundle to use when communicating with the "
            "managed container image registries. Defaults to the certificate authority data "
            "from the current user's config file.",
        ),
    ] = None,
    force_insecure: Annotated[
        bool,
        typer.Option(
            "--force-insecure",
            help="If true, allow an insecure connection to the container image registry that "
            "is hosted via HTTP or has an invalid HTTPS certificate.",
        ),
    ] = False,
    prune_registry: Annotated[
        str,
        typer.Option(
            "--prune-registry",
            metavar="true|false",
            help="If false, the prune operation will clean up image API objects, but none of the "
            "associated content in the registry is removed. (default true)",
            show_default=False,
        ),
    ] = "true",
    ignore_invalid_refs: Annotated[
        bool,
        typer.Option(
            "--ignore-invalid-refs",
            help="If true, the pruning process will ignore all errors while parsing image "
            "references. This means that the pruning process will ignore the intended "
            "connection between the object and the referenced image. As a result an image may "
            "be incorrectly deleted as unused.",
        ),
    ] = False,
) -> None:
    """Remove unreferenced images: old revisions of tags, the Images no tag names any more,
    and their manifests, layer links and blobs in the integrated registry."""
    if prune_over_size_limit and (keep_tag_revisions is not None or keep_younger_than):
        raise CliError(
            "--prune-over-size-limit cannot be specified with --keep-tag-revisions nor "
            "--keep-younger-than"
        )
    if keep_tag_revisions is not None and keep_tag_revisions < 0:
        raise CliError("--keep-tag-revisions must be greater than or equal to 0")
    if certificate_authority is not None and not certificate_authority.is_file():
        raise CliError(f"--certificate-authority: no such file {certificate_authority}")
    include_all = _go_bool("--all", all_images)
    registry_too = _go_bool("--prune-registry", prune_registry)
    options = Options(
        keep_tag_revisions=3 if keep_tag_revisions is None else keep_tag_revisions,
        keep_younger_than=_duration(keep_younger_than or "60m"),
        prune_over_size_limit=prune_over_size_limit,
        all_images=include_all,
        ignore_invalid_refs=ignore_invalid_refs,
    )
    session = open_session(ctx)
    if not session.connection.token:
        raise CliError("you must use a client config with a token")
    registry: Registry | None = None
    if confirm and registry_too:
        url = _registry_url(session, registry_url)
        verify: str | bool
        if force_insecure or url.startswith("http://"):
            verify = False
        elif certificate_authority is not None:
            verify = ca_file(certificate_authority.read_bytes())
        else:
            verify = _verify(session, False)
        registry = Registry(url, session.connection.token, verify)
    images = _list(session, f"{IMAGE_API}/images")
    streams = _list(session, f"{IMAGE_API}/imagestreams")
    limits = _size_limits(session) if prune_over_size_limit else {}
    try:
        found = plan(images, streams, options, datetime.now(UTC), limits)
    except InvalidReferences as exc:
        sys.stderr.write(
            "Failed to build graph!\n\nThe following objects have invalid references:\n\n"
        )
        for problem in exc.problems:
            sys.stderr.write(f"  {problem}\n")
        sys.stderr.write(
            "\nEither fix the references or delete the objects to make the pruner proceed.\n"
        )
        raise CliError("failed to build graph - no changes made") from None
    if not confirm:
        sys.stderr.write(DRY_RUN + "\n")
    if not registry_too:
        write(
            "Only API objects will be removed.  "
            "No modifications to the image registry will be made.\n"
        )
    _print_plan(found)
    errors = carry_out(session, found, streams, registry) if confirm else []
    for error in errors:
        sys.stderr.write(f"error deleting {error}\n")
    write(f"Summary: {summary(found, dry_run=not confirm)}\n")
    if errors:
        raise CliError(f"{len(errors)} of the removals failed")
