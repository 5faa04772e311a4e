"""Pull-through, as OpenShift's registry has it (always on): a manifest or blob of an imported
image that Wharf does not hold yet is fetched from the registry it was imported from, served,
and kept, so that the next pull is local and works with the upstream gone.

- Only what the repository's own records name is fetched: a blob that a manifest linked to the
  repository names, a manifest in its tag history (or a child of an index there). The caller
  was authorized to pull the repository before. What the registry holds for another
  repository is linked here only once this repository's upstream has it too: a manifest is
  fetched again (and digest-checked), a blob is asked after (a HEAD) before it is mounted.
- Sources are the pull specs of the repository's imported tag events (wharf.registry.
  pullthrough_sources), with the project's dockerconfigjson secrets as credentials.
- A blob goes through the upload path of a push (begin, append, verify, commit, link) while
  its bytes are streamed to the request that asked first. The last chunk is held back until
  the blob is verified and stored: a client never gets the whole of a blob whose bytes do not
  match, and once it has the whole, the registry has it too. Nothing is visible before commit.
- Each blob is fetched once per process at a time: other requests for it wait for the mirror
  and are then served locally.
- Failures answer in the error envelope: an upstream 429 is TOOMANYREQUESTS; an upstream that
  cannot be reached is UNAVAILABLE (503, Retry-After), since the image is known and a retry
  may succeed; anything else (401, 404, bytes that do not match) is BLOB_UNKNOWN or
  MANIFEST_UNKNOWN as in OpenShift. Once the status of a blob is sent, a failure cuts the
  connection: the client sees a short body and retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import structlog
from aiohttp import hdrs

from ..db.objects import ObjectStore
from ..images.streams import stream_key
from ..metrics import RegistryMetrics
from ..oci.digest import Digest
from ..oci.manifest import InvalidManifest, parse_manifest
from ..storage.base import BlobContent, BlobStore, StorageUnavailable
from ..upstream.client import (
    INVALID,
    TOO_MANY_REQUESTS,
    UNAUTHORIZED,
    UNREACHABLE,
    Credentials,
    RegistryClient,
    UpstreamError,
    credentials_for,
)
from .cluster_access import split_repository
from .errors import RegistryError
from .metadata import RegistryMetadata, StoredManifest
from .pullthrough_records import PullThroughRecords
from .pullthrough_sources import Source, candidates
from .uploads import Uploads

log = structlog.get_logger("wharf.registry.pullthrough")

# Operations as OpenShift's metrics name them.
BLOB_OPERATION = "BlobStore.Open"
MANIFEST_OPERATION = "ManifestService.Get"
# Chunks queued for the request streaming a blob being mirrored: a slow client slows the
# mirror down rather than filling memory.
FEED_CHUNKS = 8
# Seconds the streaming request may leave a chunk untaken before the mirror goes on without it
# (and its connection is cut): one slow client must not hold the mirror for everyone waiting.
FEED_STALL = 5.0
# Seconds a finished mirror is remembered (for requests that raced its end).
LINGER = 10.0
# Seconds a client is asked to wait before it retries (as when storage is unavailable).
RETRY_AFTER = "5"
SECRETS = "secrets"
# Upstream clients kept (one per registry, insecurity and credentials): a handful in practice.
KEPT_CLIENTS = 64

OwnHosts = Callable[[], Awaitable[Collection[str]]]


@dataclass(frozen=True, slots=True)
class Failure:
    source: Source
    reason: str


def refusal(failures: list[Failure], unknown: str, what: str) -> RegistryError:
    """The answer when no source gave `what`."""
    where = "; ".join(f"{f.source}: {f.reason}" for f in failures) or "no upstream"
    message = f"{what} could not be fetched from upstream ({where})"
    reasons = {f.reason for f in failures}
    if TOO_MANY_REQUESTS in reasons:
        return RegistryError("TOOMANYREQUESTS", message, headers={hdrs.RETRY_AFTER: RETRY_AFTER})
    if UNREACHABLE in reasons:
        return RegistryError("UNAVAILABLE", message, headers={hdrs.RETRY_AFTER: RETRY_AFTER})
    return RegistryError(unknown, message)


def _code(reason: str, operation: str) -> str:
    """The error code a failure counts under in the metrics, as OpenShift's would."""
    unknown = "BLOB_UNKNOWN" if operation == BLOB_OPERATION else "MANIFEST_UNKNOWN"
    return {
        TOO_MANY_REQUESTS: "TOOMANYREQUESTS",
        UNREACHABLE: "UNAVAILABLE",
        UNAUTHORIZED: "UNAUTHORIZED",
        INVALID: "DIGEST_INVALID" if operation == BLOB_OPERATION else "MANIFEST_INVALID",
    }.get(reason, unknown)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UpstreamError):
        return str(exc.reason)
    return UNREACHABLE  # the connection broke, or the upstream sent garbage framing


class _Broken(Exception):
    """The upstream failed after its bytes began to flow."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_END = object()
_FAILED = object()


class Mirror:
    """One blob being fetched from upstream into the store."""

    def __init__(self, name: str, repository_id: int, digest: str, size: int, feed: bool) -> None:
        self.name = name
        self.repository_id = repository_id
        self.digest = digest
        self.size = size
        self.answered = asyncio.Event()  # an upstream is sending it, or every source failed
        self.finished = asyncio.Event()  # stored and linked, or failed
        self.failure: RegistryError | None = None
        self.queue: asyncio.Queue[object] | None = asyncio.Queue(FEED_CHUNKS) if feed else None
        self.task: asyncio.Task[None] | None = None

    async def send(self, item: object) -> None:
        """Give the streaming request the next item, unless it went away (or took nothing
        for so long that it must have)."""
        if self.queue is not None:
            try:
                async with asyncio.timeout(FEED_STALL):
                    await self.queue.put(item)
            except TimeoutError:
                self.detach()

    def detach(self) -> None:
        """The streaming request is gone, or failed: the mirror goes on without it. It is
        told so (if it is still there): what is queued is dropped (which frees a put that
        waits for room) for the failure marker, on which it cuts its connection."""
        queue, self.queue = self.queue, None
        if queue is None:
            return
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(_FAILED)


class _Feed:
    """The blob's bytes as the mirror receives them, for the request that asked first
    (a BlobContent: a failure part way is reported as the storage giving out, which cuts
    the connection)."""

    def __init__(self, mirror: Mirror) -> None:
        self.mirror = mirror

    async def chunks(self) -> AsyncIterator[bytes]:
        queue = self.mirror.queue
        while queue is not None:
            item = await queue.get()
            if item is _END:
                return
            if not isinstance(item, bytes):  # _FAILED
                break
            yield item
        raise StorageUnavailable(f"pull-through of {self.mirror.digest} broke off")

    async def close(self) -> None:
        self.mirror.detach()


@dataclass(frozen=True, slots=True)
class Pull:
    """A blob that the repository's manifests name but that is not linked to it: `local`
    when the registry held it and it is linked now, else to be fetched."""

    name: str
    repository_id: int
    digest: str
    size: int
    local: bool


class PullThrough:
    def __init__(
        self,
        metadata: RegistryMetadata,
        uploads: Uploads,
        store: BlobStore,
        objects: ObjectStore | None,
        own_hosts: OwnHosts,
        metrics: RegistryMetrics | None = None,
    ) -> None:
        self.metadata = metadata
        self.records = PullThroughRecords(metadata.db)
        self.uploads = uploads
        self.store = store
        self.objects = objects
        self.own_hosts = own_hosts
        self.metrics = metrics
        self._session: aiohttp.ClientSession | None = None
        self._registries: dict[tuple[str, bool, Credentials | None], RegistryClient] = {}
        self._mirrors: dict[str, Mirror] = {}
        self._manifests: dict[tuple[int, str], asyncio.Task[StoredManifest | None]] = {}

    async def close(self) -> None:
        """Stop every fetch (their uploads are aborted) and close the connections."""
        tasks: list[asyncio.Task[Any]] = [*self._manifests.values()]
        tasks += [m.task for m in self._mirrors.values() if m.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        if self._session is not None:
            await self._session.close()

    # Blobs

    async def find(self, name: str, repository_id: int, digest: str) -> Pull | None:
        """The pull of blob `digest` that repository `name` does not hold; None when no
        manifest linked to it names the blob (then it is unknown there)."""
        size = await self.records.referenced_size(repository_id, digest)
        if size is None or not await self.records.source_events(repository_id):
            return None  # pushed here: nowhere to fetch it from
        pull = Pull(name, repository_id, digest, size, False)
        # Held already (for another repository, or by an earlier pull): linked here once
        # this repository's upstream says it has the blob too. A digest alone proves nothing:
        # a manifest naming another repository's blob must not open its bytes.
        local = False
        if await self.store.stat(digest) == size:
            await self._upstream_has(pull)
            local = await self.metadata.mount_blob(repository_id, digest)
        self._count_cache(local)
        return replace(pull, local=local)

    async def _upstream_has(self, pull: Pull) -> None:
        """Return once one of the repository's sources answers that it holds the blob, of
        its size (a HEAD); else the refusal, as for a failed fetch."""
        failures: list[Failure] = []
        for source, credentials in await self._sources(pull.name, pull.repository_id):
            try:
                with self._timed(source, BLOB_OPERATION):
                    client = self._client(source, credentials)
                    size = await client.blob_size(source.repository, pull.digest)
                if size != pull.size:
                    raise _Broken(INVALID)  # not the blob the manifest names
                return
            except (UpstreamError, _Broken) as exc:
                reason = str(exc.reason)
                self._failed(source, BLOB_OPERATION, reason, pull.digest)
                failures.append(Failure(source, reason))
        raise refusal(failures, "BLOB_UNKNOWN", f"blob {pull.digest}")

    def _mirror(self, pull: Pull, feed: bool) -> tuple[Mirror, bool]:
        """The mirror of the blob in flight, or a new one (True) started now."""
        found = self._mirrors.get(pull.digest)
        if found is not None:
            return found, False
        mirror = Mirror(pull.name, pull.repository_id, pull.digest, pull.size, feed)
        self._mirrors[pull.digest] = mirror
        mirror.task = asyncio.create_task(self._run(mirror))
        return mirror, True

    async def stream(self, pull: Pull) -> BlobContent | None:
        """Its bytes as they arrive from upstream, for a GET of the whole blob; None when
        another request is fetching it (it is local once this returns)."""
        mirror, started = self._mirror(pull, feed=True)
        if not started:
            await self.wait(pull)
            return None
        await mirror.answered.wait()
        if mirror.failure is not None:
            raise mirror.failure
        return _Feed(mirror)

    async def check(self, pull: Pull) -> None:
        """Return once an upstream sends it (a HEAD): its fetch goes on in the background."""
        mirror, _ = self._mirror(pull, feed=False)
        if mirror.repository_id != pull.repository_id:
            # Fetched for another repository, from its sources: this one's must have it too.
            await self._upstream_has(pull)
            return
        await mirror.answered.wait()
        if mirror.failure is not None:
            raise mirror.failure

    async def wait(self, pull: Pull) -> None:
        """Return once it is stored and linked to the repository."""
        mirror, _ = self._mirror(pull, feed=False)
        await mirror.finished.wait()
        if mirror.failure is not None and mirror.repository_id != pull.repository_id:
            # Fetched for another repository, whose sources failed: this one's may not.
            mirror, _ = self._mirror(pull, feed=False)
            await mirror.finished.wait()
        if mirror.failure is not None:
            raise mirror.failure
        if mirror.repository_id != pull.repository_id:
            # Fetched from another repository's sources: linked here only if this one's
            # upstream has it too.
            await self._upstream_has(pull)
            await self.metadata.mount_blob(pull.repository_id, pull.digest)

    async def _run(self, mirror: Mirror) -> None:
        held: list[bytes] = []  # the last chunk, sent once the blob is stored
        try:
            await self._fetch(mirror, held)
        except RegistryError as exc:
            mirror.failure = exc
        except StorageUnavailable as exc:
            log.warning("pull-through: storage unavailable", digest=mirror.digest, reason=str(exc))
            mirror.failure = RegistryError(
                "UNAVAILABLE",
                "storage is unavailable, retry later",
                headers={hdrs.RETRY_AFTER: RETRY_AFTER},
            )
        except asyncio.CancelledError:
            mirror.failure = RegistryError("UNAVAILABLE", "the registry is stopping")
            mirror.detach()  # the streaming request cuts its connection
            raise
        except Exception:
            log.exception("pull-through failed", digest=mirror.digest)
            mirror.failure = RegistryError("UNKNOWN", "internal error")
        finally:
            if mirror.failure is not None:
                self._forget(mirror)  # the next request tries again
            else:
                # Kept a little: a request that found the blob missing just before it was
                # linked joins this mirror instead of fetching it again.
                asyncio.get_running_loop().call_later(LINGER, self._forget, mirror)
            mirror.answered.set()
            mirror.finished.set()
        if mirror.failure is not None:
            mirror.detach()  # the streaming request cuts its connection
            return
        for chunk in held:
            await mirror.send(chunk)
        await mirror.send(_END)

    def _forget(self, mirror: Mirror) -> None:
        if self._mirrors.get(mirror.digest) is mirror:
            del self._mirrors[mirror.digest]

    async def _fetch(self, mirror: Mirror, held: list[bytes]) -> None:
        failures: list[Failure] = []
        for source, credentials in await self._sources(mirror.name, mirror.repository_id):
            try:
                with self._timed(source, BLOB_OPERATION):
                    client = self._client(source, credentials)
                    async with client.blob(source.repository, mirror.digest) as remote:
                        if remote.size != mirror.size:
                            raise _Broken(INVALID)  # not the blob the manifest names
                        mirror.answered.set()
                        await self._store(mirror, remote.chunks(), held)
                return
            except (UpstreamError, _Broken) as exc:
                reason = str(exc.reason)
                self._failed(source, BLOB_OPERATION, reason, mirror.digest)
                failures.append(Failure(source, reason))
                if mirror.answered.is_set():
                    break  # bytes were sent: this request is over, the next one tries again
        raise refusal(failures, "BLOB_UNKNOWN", f"blob {mirror.digest}")

    async def _store(self, mirror: Mirror, chunks: AsyncIterator[bytes], held: list[bytes]) -> None:
        """Store the upstream's bytes as the blob through a push's upload path, feeding the
        streaming request all but the last chunk on the way."""
        broke: list[BaseException] = []

        async def tee() -> AsyncIterator[bytes]:
            received = 0
            try:
                async for chunk in chunks:
                    received += len(chunk)
                    if received > mirror.size:
                        raise _Broken(INVALID)  # longer than the blob: stop reading
                    if held:
                        await mirror.send(held.pop())
                    held.append(chunk)
                    yield chunk
            except Exception as exc:
                broke.append(exc)
                raise

        try:
            await self.uploads.monolithic(mirror.name, Digest.parse(mirror.digest), tee())
        except RegistryError as exc:
            # The upload was aborted: nothing of it is visible.
            if broke:
                cause = broke[0]
                raise _Broken(
                    cause.reason if isinstance(cause, _Broken) else _reason(cause)
                ) from None
            if exc.code == "DIGEST_INVALID":
                raise _Broken(INVALID) from None
            raise

    # Manifests

    async def manifest(
        self, name: str, repository_id: int, reference: str, by_digest: bool
    ) -> StoredManifest | None:
        """The manifest a pull of `reference` means in the repository, fetched from upstream
        if the registry does not hold it; None when the repository's records do not name
        one there, or no tag of it was imported."""
        digest = await self.records.image_digest(repository_id, reference, by_digest)
        if digest is None or not await self.records.source_events(repository_id):
            return None  # unknown here, or pushed here: nowhere to fetch it from
        # Not linked to this repository (the caller looked): fetched from its own sources and
        # checked against the digest, even when the registry holds that manifest for another
        # repository. A digest named by an imported index proves nothing about access to it.
        key = (repository_id, digest)
        task = self._manifests.get(key)
        if task is None:
            task = asyncio.create_task(self._fetch_manifest(name, repository_id, digest))
            self._manifests[key] = task
            task.add_done_callback(lambda done: self._forget_manifest(key, done))
        return await asyncio.shield(task)

    def _forget_manifest(self, key: tuple[int, str], task: asyncio.Task[Any]) -> None:
        if self._manifests.get(key) is task:
            del self._manifests[key]
        if not task.cancelled():
            task.exception()  # every waiter may have gone: retrieved, so it is not logged

    async def _fetch_manifest(
        self, name: str, repository_id: int, digest: str
    ) -> StoredManifest | None:
        sources = await self._sources(name, repository_id)
        if not sources:
            return None
        wanted = Digest.parse(digest)
        failures: list[Failure] = []
        for source, credentials in sources:
            try:
                with self._timed(source, MANIFEST_OPERATION):
                    remote = await self._client(source, credentials).manifest(
                        source.repository, digest
                    )
                if Digest.of(remote.payload, wanted.algorithm) != wanted:
                    raise _Broken(INVALID)
                manifest = parse_manifest(remote.payload, remote.media_type, wanted)
            except (UpstreamError, _Broken) as exc:
                failures.append(Failure(source, str(exc.reason)))
                self._failed(source, MANIFEST_OPERATION, str(exc.reason), digest)
                continue
            except InvalidManifest:
                failures.append(Failure(source, INVALID))
                self._failed(source, MANIFEST_OPERATION, INVALID, digest)
                continue
            await self.records.store_fetched(repository_id, manifest)
            return StoredManifest(digest, manifest.media_type, manifest.payload)
        raise refusal(failures, "MANIFEST_UNKNOWN", f"manifest {digest}")

    # Sources, clients, metrics

    async def _sources(
        self, name: str, repository_id: int
    ) -> list[tuple[Source, Credentials | None]]:
        events = await self.records.source_events(repository_id)
        if not events:
            return []
        project, stream_name = split_repository(name) or ("", "")
        stream = None
        if self.objects is not None:
            stream = await self.objects.get(stream_key(project, stream_name))
        found = candidates(events, stream, await self.own_hosts())
        if not found or self.objects is None:
            return [(source, None) for source in found]
        secrets, _ = await self.objects.items(SECRETS, project)
        return [(source, credentials_for(source.registry, secrets)) for source in found]

    def _client(self, source: Source, credentials: Credentials | None) -> RegistryClient:
        """A client of the source's registry, kept for the next fetch: it knows the scheme
        the registry answers at and its tokens, and the one session keeps connections."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._registries.clear()
        key = (source.registry, source.insecure, credentials)
        client = self._registries.get(key)
        if client is None:
            if len(self._registries) >= KEPT_CLIENTS:
                self._registries.clear()
            client = RegistryClient(
                source.registry,
                insecure=source.insecure,
                credentials=credentials,
                session=self._session,
            )
            self._registries[key] = client
        return client

    def _failed(self, source: Source, operation: str, reason: str, digest: str) -> None:
        log.warning(
            "pull-through from upstream failed",
            upstream=str(source),
            operation=operation,
            reason=reason,
            digest=digest,
        )
        if self.metrics is not None:
            code = _code(reason, operation)
            self.metrics.pullthrough_errors.labels(source.registry, operation, code).inc()

    def _count_cache(self, hit: bool) -> None:
        if self.metrics is not None:
            self.metrics.pullthrough_cache.labels("Hit" if hit else "Miss").inc()

    @contextlib.contextmanager
    def _timed(self, source: Source, operation: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            if self.metrics is not None:
                seconds = time.perf_counter() - began
                self.metrics.pullthrough_duration.labels(source.registry, operation).observe(
                    seconds
                )
