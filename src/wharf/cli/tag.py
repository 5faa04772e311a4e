"""`wharf tag`, as `oc tag`: point tags of image streams at an image this registry holds (named
by another tag, by digest, or by an outside pull spec), or delete such tags.

A source tag is resolved here to the digest it points at now, as oc does without `--alias`, so
the new tag names that image (an ImageStreamImage) and does not follow later pushes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from ..oci.digest import is_digest
from ..oci.names import is_valid_name, is_valid_tag
from .errors import ApiFailure, CliError
from .state import NamespaceOption, Session, open_session

IMAGE_API = "/apis/image.openshift.io/v1"
TAG = "ImageStreamTag"
IMAGE = "ImageStreamImage"
DOCKER = "DockerImage"
SOURCE_KINDS = {
    "imagestreamtag": TAG,
    "imagestreamtags": TAG,
    "istag": TAG,
    "imagestreamimage": IMAGE,
    "imagestreamimages": IMAGE,
    "isimage": IMAGE,
    "docker": DOCKER,
    "dockerimage": DOCKER,
}


@dataclass(frozen=True)
class StreamTag:
    """`[project/]stream:tag` (or `@digest`), with the project it lives in."""

    namespace: str
    stream: str
    tag: str = ""
    digest: str = ""
    explicit_namespace: bool = False

    @property
    def name(self) -> str:
        """The object's name in its project: `stream:tag` or `stream@digest`."""
        return f"{self.stream}@{self.digest}" if self.digest else f"{self.stream}:{self.tag}"

    def shown(self, current: str) -> str:
        """As oc shows it: with its project unless that is the current one."""
        return self.name if self.namespace == current else f"{self.namespace}/{self.name}"


def _registry_like(segment: str) -> bool:
    return "." in segment or ":" in segment or segment == "localhost"


def parse_stream_ref(text: str, current: str, default_tag: str | None = None) -> StreamTag:
    """`[project/]stream(:tag|@digest)`; a missing tag is `default_tag` (None: required)."""
    path, at, digest = text.partition("@")
    parts = path.split("/")
    if len(parts) > 2 or not all(parts):
        if len(parts) > 2 and _registry_like(parts[0]):
            raise CliError(
                f'"{text}" names a registry, which only an image from outside may: pass '
                "--source=docker for one"
            )
        raise CliError(f'invalid image stream "{text}": use [project/]stream:tag')
    namespace, explicit = (parts[0], True) if len(parts) == 2 else (current, False)
    stream, colon, tag = parts[-1].partition(":")
    if at:
        if colon:
            raise CliError(f'"{text}" has both a tag and a digest')
        if not is_digest(digest):
            raise CliError(f'"{text}" does not end in a valid digest (sha256:...)')
    elif not colon:
        if default_tag is None:
            raise CliError(f'"{text}" must be of the form [project/]stream:tag')
        tag = default_tag
    elif not is_valid_tag(tag):
        raise CliError(f'"{tag}" in "{text}" is not a valid tag')
    if not is_valid_name(stream):
        raise CliError(f'"{stream}" in "{text}" is not a valid image stream name')
    return StreamTag(namespace, stream, tag, digest, explicit)


def _source_kind(given: str | None, source: str) -> str:
    if given:
        kind = SOURCE_KINDS.get(given.lower())
        if kind is None:
            raise CliError(
                f'invalid source "{given}"; valid values are docker, imagestreamimage, '
                "imagestreamtag, isimage, istag"
            )
        return kind
    # As oc guesses: a registry host means a pull spec; else a digest, else a tag.
    parts = source.split("@", 1)[0].split("/")
    if len(parts) > 1 and _registry_like(parts[0]):
        return DOCKER
    if "@" in source:
        return IMAGE
    if ":" in parts[-1]:
        return TAG
    return DOCKER


def _current_image(session: Session, source: StreamTag, text: str) -> str:
    """The digest `source`'s tag points at now."""
    stream = session.client.get(
        f"{IMAGE_API}/namespaces/{source.namespace}/imagestreams/{source.stream}"
    )
    for history in (stream.get("status") or {}).get("tags") or []:
        if history.get("tag") == source.tag and history.get("items"):
            image = history["items"][0].get("image")
            if image:
                return str(image)
    raise CliError(
        f'"{text}" is not currently pointing to an image, cannot use it as the source of a tag'
    )


def _istag_path(destination: StreamTag) -> str:
    return f"{IMAGE_API}/namespaces/{destination.namespace}/imagestreamtags/{destination.name}"


def _set(session: Session, destination: StreamTag, reference: dict[str, Any]) -> None:
    """Update the ImageStreamTag; create it when there is none (as oc: PUT, then POST)."""
    body = {
        "apiVersion": "image.openshift.io/v1",
        "kind": TAG,
        "metadata": {"name": destination.name, "namespace": destination.namespace},
        "tag": {"name": destination.tag, **reference},
    }
    try:
        session.client.put(_istag_path(destination), body)
    except ApiFailure as failure:
        if failure.code not in (404, 405):
            raise
        session.client.post(f"{IMAGE_API}/namespaces/{destination.namespace}/imagestreamtags", body)


def tag(
    ctx: typer.Context,
    references: Annotated[
        list[str],
        typer.Argument(
            metavar="SOURCE DEST...",
            help="SOURCE: [project/]stream:tag, [project/]stream@sha256:..., or a pull spec "
            "with --source=docker; DEST: [project/]stream[:tag] (tag: latest)",
            show_default=False,
        ),
    ],
    source_kind: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="What SOURCE is: istag, isimage or docker (default: guessed from SOURCE)",
        ),
    ] = None,
    delete: Annotated[
        bool,
        typer.Option("--delete", "-d", help="Delete the tags given (no SOURCE)"),
    ] = False,
    reference: Annotated[
        bool,
        typer.Option(
            "--reference", help="Mark the tag as a reference: pulled from its source, not here"
        ),
    ] = False,
    scheduled: Annotated[
        bool,
        typer.Option("--scheduled", help="Import an outside image again periodically"),
    ] = False,
    insecure: Annotated[
        bool,
        typer.Option("--insecure", help="Reach an outside registry over HTTP or unverified HTTPS"),
    ] = False,
    reference_policy: Annotated[
        str,
        typer.Option(
            "--reference-policy",
            help="source: consumers pull from the source; local: through this registry",
        ),
    ] = "source",
    import_mode: Annotated[
        str,
        typer.Option(
            "--import-mode",
            help="Legacy: one platform's image of a manifest list; PreserveOriginal: all",
        ),
    ] = "Legacy",
    namespace: Annotated[str | None, NamespaceOption] = None,
) -> None:
    """Tag an existing image into image streams (as `oc tag`), or delete tags with -d.

    \b
      wharf tag demo/app:latest demo/app:prod     # prod now names latest's image
      wharf tag app@sha256:... app:v1             # a digest of stream app
      wharf tag --source=docker quay.io/org/img@sha256:... app:ext
      wharf tag -d demo/app:prod
    """
    session = open_session(ctx, namespace)
    current = session.namespace
    if delete:
        if source_kind or reference:
            raise CliError("--source and --reference cannot be used with --delete")
        for text in references:
            destination = parse_stream_ref(text, current)
            session.client.delete(_istag_path(destination))
            typer.echo(f"Deleted tag {destination.namespace}/{destination.name}.")
        return
    if len(references) < 2:
        raise CliError(
            "you must specify a source and at least one destination or one or more tags to delete"
        )
    source_text, destinations = references[0], references[1:]
    kind = _source_kind(source_kind, source_text)
    policy = {"source": "Source", "local": "Local"}.get(reference_policy.lower())
    if policy is None:
        raise CliError(
            f'invalid --reference-policy "{reference_policy}": valid values are source, local'
        )
    mode = {"legacy": "Legacy", "preserveoriginal": "PreserveOriginal"}.get(import_mode.lower())
    if mode is None:
        raise CliError(
            f'invalid --import-mode "{import_mode}": valid values are Legacy, PreserveOriginal'
        )
    if kind != DOCKER and (scheduled or insecure):
        raise CliError("--scheduled and --insecure apply only to images from another registry")
    targets = [parse_stream_ref(text, current, default_tag="latest") for text in destinations]

    origin: dict[str, Any]
    if kind == DOCKER:
        origin = {"kind": DOCKER, "name": source_text}
        shown = source_text
    else:
        source = parse_stream_ref(source_text, current)
        if kind == TAG and source.digest:
            raise CliError(f'--source=istag requires a valid <stream>:<tag> in "{source_text}"')
        if kind == IMAGE and not source.digest:
            raise CliError(
                f'--source=isimage requires a valid <stream>@<digest> in "{source_text}"'
            )
        digest = source.digest or _current_image(session, source, source_text)
        image_name = f"{source.stream}@{digest}"
        origin = {"kind": IMAGE, "name": image_name, "namespace": source.namespace}
        shown = f"{source.namespace}/{image_name}" if source.explicit_namespace else image_name
    for destination in targets:
        spec: dict[str, Any] = {
            "from": origin,
            "reference": reference,
            "referencePolicy": {"type": policy},
            "importPolicy": {},
        }
        if kind == DOCKER:
            spec["generation"] = 0
            # An outside image is imported (again at intervals when scheduled).
            spec["importPolicy"] = {
                "insecure": insecure,
                "scheduled": scheduled,
                "importMode": mode,
            }
        _set(session, destination, spec)
        typer.echo(f"Tag {destination.shown(current)} set to {shown}.")
