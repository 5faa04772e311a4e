"""`wharf import-image`, as `oc import-image`: import an image (or every tag of a repository)
from another registry into an image stream through the ImageStreamImport API, then show the
stream as `oc describe is` does, and the imported image."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..oci.names import is_valid_name, is_valid_tag
from ..upstream.reference import RemoteReference
from .describe import describe_imagestream
from .errors import ApiFailure, CliError
from .state import NamespaceOption, Session, open_session

IMAGE_API = "/apis/image.openshift.io/v1"
IMPORT_MODES = {"legacy": "Legacy", "preserveoriginal": "PreserveOriginal"}
REFERENCE_POLICIES = {"local": "Local", "source": "Source"}


def _stream_and_tag(text: str) -> tuple[str, str | None]:
    name, colon, tag = text.partition(":")
    if "@" in text or "/" in name or not is_valid_name(name):
        raise CliError(f'invalid image stream name "{text}": use NAME[:TAG]')
    if colon and not is_valid_tag(tag):
        raise CliError(f'"{tag}" in "{text}" is not a valid tag')
    return name, tag if colon else None


def _stream(session: Session, name: str) -> dict[str, Any] | None:
    try:
        return session.client.get(f"{IMAGE_API}/namespaces/{session.namespace}/imagestreams/{name}")
    except ApiFailure as failure:
        if failure.code == 404:
            return None
        raise


def _spec_tag(stream: dict[str, Any] | None, name: str, tag: str) -> dict[str, Any]:
    """The spec tag an existing tag imports by, for a re-import without --from."""
    for spec_tag in ((stream or {}).get("spec") or {}).get("tags") or []:
        source = spec_tag.get("from") or {}
        if spec_tag.get("name") == tag and source.get("kind") == "DockerImage":
            return dict(spec_tag)
    if stream is None:
        raise CliError(f'the image stream "{name}" does not exist: pass --from to import into it')
    raise CliError(
        f'the tag "{tag}" does not import from another registry: pass --from to set its source'
    )


def _describe_image(image: dict[str, Any]) -> str:
    """The imported image, as oc shows it after the stream."""
    metadata = image.get("dockerImageMetadata") or {}
    lines = [
        f"Docker Image:\t{image.get('dockerImageReference', '')}",
        f"Name:\t\t{(image.get('metadata') or {}).get('name', '')}",
        f"Media Type:\t{image.get('dockerImageManifestMediaType', '')}",
    ]
    if metadata.get("Created"):
        lines.append(f"Created:\t{metadata['Created']}")
    if metadata.get("Architecture"):
        platform = f"{metadata.get('Os', '')}/{metadata['Architecture']}"
        lines.append(f"Platform:\t{platform}")
    for manifest in image.get("dockerImageManifests") or []:
        platform = f"{manifest.get('os', '')}/{manifest.get('architecture', '')}"
        lines.append(f"Manifest:\t{manifest.get('digest', '')} {platform}")
    return "\n".join(lines) + "\n"


def import_image(
    ctx: typer.Context,
    image: Annotated[
        str, typer.Argument(metavar="NAME[:TAG]", help="The image stream (and tag: latest)")
    ],
    source: Annotated[
        str | None,
        typer.Option("--from", help="The image to import: REGISTRY/REPOSITORY[:TAG|@DIGEST]"),
    ] = None,
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Create the image stream if it does not exist")
    ] = False,
    all_tags: Annotated[
        bool, typer.Option("--all", help="Import every tag of the repository (up to 50)")
    ] = False,
    scheduled: Annotated[
        bool, typer.Option("--scheduled", help="Check the source again periodically")
    ] = False,
    insecure: Annotated[
        bool,
        typer.Option("--insecure", help="Reach the registry over HTTP or unverified HTTPS"),
    ] = False,
    reference_policy: Annotated[
        str | None,
        typer.Option(
            "--reference-policy",
            help="source (default): consumers pull from the source; local: through this registry",
        ),
    ] = None,
    import_mode: Annotated[
        str | None,
        typer.Option(
            "--import-mode",
            help="Legacy (default): one platform's image of a manifest list; PreserveOriginal: all",
        ),
    ] = None,
    namespace: Annotated[str | None, NamespaceOption] = None,
) -> None:
    """Import images from another registry into an image stream (as `oc import-image`).

    \b
      wharf import-image app:1.0 --from=quay.io/org/app:1.0 --confirm
      wharf import-image app --from=quay.io/org/app --all --confirm
      wharf import-image app:1.0                   # again, from the tag's source
    """
    name, tag = _stream_and_tag(image)
    reference_policy_given, import_mode_given = (
        reference_policy is not None,
        import_mode is not None,
    )
    reference_policy, import_mode = reference_policy or "source", import_mode or "Legacy"
    policy = REFERENCE_POLICIES.get(reference_policy.lower())
    if policy is None:
        raise CliError(
            f'invalid --reference-policy "{reference_policy}": valid values are source, local'
        )
    mode = IMPORT_MODES.get(import_mode.lower())
    if mode is None:
        raise CliError(
            f'invalid --import-mode "{import_mode}": valid values are Legacy, PreserveOriginal'
        )
    if all_tags and tag is not None:
        raise CliError("--all imports every tag: give the image stream without a tag")
    if all_tags and source is None:
        raise CliError("--all needs --from: the repository to import")
    if source is not None:
        try:
            parsed = RemoteReference.parse(source)
        except ValueError as exc:
            raise CliError(f'invalid --from "{source}": {exc}') from None
        if all_tags and (parsed.digest or ":" in source.rsplit("/", 1)[-1]):
            raise CliError("--all imports a whole repository: give --from without a tag")
    session = open_session(ctx, namespace)
    stream = _stream(session, name)
    if stream is None and not confirm:
        raise CliError(
            f'the image stream "{name}" does not exist, pass --confirm to create and import'
        )
    tag = tag or "latest"
    import_policy = {"insecure": insecure, "scheduled": scheduled, "importMode": mode}
    if source is None:
        # Again from the tag's source, as it imports: its policies unless flags say more.
        spec_tag = _spec_tag(stream, name, tag)
        source = str(spec_tag["from"]["name"])
        known = spec_tag.get("importPolicy") or {}
        import_policy = {
            "insecure": insecure or known.get("insecure") is True,
            "scheduled": scheduled or known.get("scheduled") is True,
            "importMode": mode if import_mode_given else known.get("importMode") or mode,
        }
        if not reference_policy_given:
            policy = (spec_tag.get("referencePolicy") or {}).get("type") or policy
    spec: dict[str, Any] = {"import": True}
    if all_tags:
        spec["repository"] = {
            "from": {"kind": "DockerImage", "name": source},
            "importPolicy": import_policy,
            "referencePolicy": {"type": policy},
        }
    else:
        spec["images"] = [
            {
                "from": {"kind": "DockerImage", "name": source},
                "to": {"name": tag},
                "importPolicy": import_policy,
                "referencePolicy": {"type": policy},
            }
        ]
    answer = session.client.post(
        f"{IMAGE_API}/namespaces/{session.namespace}/imagestreamimports",
        {
            "apiVersion": "image.openshift.io/v1",
            "kind": "ImageStreamImport",
            "metadata": {"name": name},
            "spec": spec,
        },
    )
    _report(answer, name)


def _report(answer: dict[str, Any], name: str) -> None:
    status = answer.get("status") or {}
    results = list(status.get("images") or [])
    repository = status.get("repository") or {}
    results += repository.get("images") or []
    failures = [
        f"tag {r.get('tag', '')} failed: {(r.get('status') or {}).get('message', '')}"
        for r in results
        if (r.get("status") or {}).get("status") != "Success"
    ]
    if (repository.get("status") or {}).get("status") == "Failure":
        failures.append(f"import failed: {repository['status'].get('message', '')}")
    imported = [r for r in results if (r.get("status") or {}).get("status") == "Success"]
    stream = status.get("import")
    if imported:
        verdict = "imported with errors" if failures else "imported"
        typer.echo(f"imagestream.image.openshift.io/{name} {verdict}\n")
        if isinstance(stream, dict):
            typer.echo(describe_imagestream(stream))
        if len(imported) == 1 and isinstance(imported[0].get("image"), dict):
            typer.echo(f"Image Name:\t{name}:{imported[0].get('tag', '')}")
            typer.echo(_describe_image(imported[0]["image"]))
    if failures or not imported:
        raise CliError("; ".join(failures) or "nothing was imported")
