"""A client of another registry's OCI distribution API: manifests, blobs and tags, read only.

It answers an authentication challenge as docker does (`WWW-Authenticate: Bearer realm=...`
leads to a token request with the service and scope it names, using the credentials if any;
`Basic` sends them directly), and reports every failure as an UpstreamError with one of a few
reasons that callers map to their own protocol's errors."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..oci import mediatypes
from ..oci.digest import Digest, InvalidDigest
from ..oci.manifest import MAX_MANIFEST_BYTES, InvalidManifest, parse_manifest
from .credentials import Credentials, credentials_for

__all__ = [
    "Credentials",
    "RegistryClient",
    "RemoteBlob",
    "RemoteManifest",
    "UpstreamError",
    "credentials_for",
]

UNAUTHORIZED = "Unauthorized"
NOT_FOUND = "NotFound"
UNREACHABLE = "Unreachable"
TOO_MANY_REQUESTS = "TooManyRequests"
INVALID = "Invalid"

# Bounded waits: a silent upstream must not hold an import or a pull for long, nor one that
# trickles its answer a byte at a time. Every request's answer (its headers, and its whole
# body but a blob's, which may be large) must come within TOTAL_SECONDS.
TOTAL_SECONDS = 60.0
# The largest tag list or token answer read.
MAX_DOCUMENT_BYTES = 1024 * 1024
ACCEPT = ", ".join(
    (
        mediatypes.OCI_INDEX,
        mediatypes.DOCKER_MANIFEST_LIST,
        mediatypes.OCI_MANIFEST,
        mediatypes.DOCKER_MANIFEST,
    )
)
_CHALLENGE_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


class UpstreamError(Exception):
    """A failure of the upstream registry, with `reason` one of Unauthorized, NotFound,
    Unreachable, TooManyRequests and Invalid (a digest that does not match, a bad manifest)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class RemoteManifest:
    media_type: str
    payload: bytes
    digest: str  # computed from the payload


class RemoteBlob:
    """A blob's response being read: its size (Content-Length) and its bytes as they come."""

    def __init__(self, size: int, response: aiohttp.ClientResponse, where: str) -> None:
        self.size = size
        self._response = response
        self._where = where

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamError(UNREACHABLE, f"{self._where}: {_describe(exc)}") from None


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic"
    params: Mapping[str, str]

    @classmethod
    def parse(cls, header: str | None) -> Challenge | None:
        if not header:
            return None
        scheme, _, rest = header.strip().partition(" ")
        params = {m[1].lower(): m[2] or m[3] for m in _CHALLENGE_PARAM.finditer(rest)}
        return cls(scheme.lower(), params)


def _timeout(whole: bool = True) -> aiohttp.ClientTimeout:
    """The waits of a request: with `whole`, its body is bounded in total too."""
    return aiohttp.ClientTimeout(
        total=TOTAL_SECONDS if whole else None, connect=5, sock_connect=5, sock_read=30
    )


def _describe(exc: BaseException) -> str:
    """One line about a transport failure, without anything a request carried."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {exc.os_error.strerror or type(exc.os_error).__name__}"
    return type(exc).__name__


class RegistryClient:
    """One upstream registry (`host[:port]`, `docker.io` for Docker Hub)."""

    def __init__(
        self,
        registry: str,
        *,
        insecure: bool = False,
        credentials: Credentials | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.registry = registry
        self._host = "registry-1.docker.io" if registry == "docker.io" else registry
        # Insecure as OpenShift means it: HTTPS without verifying the certificate, then HTTP.
        self._schemes = ("https", "http") if insecure else ("https",)
        self._insecure = insecure
        self._credentials = credentials
        self._owned = session is None
        self._session = session
        self._base: str | None = None
        self._challenge: Challenge | None = None
        self._tokens: dict[str, str] = {}  # scope -> Authorization header

    async def close(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _ssl(self, url: str) -> bool:
        return not (self._insecure and url.startswith("https:"))

    # Manifests, blobs, tags

    async def manifest(self, repository: str, reference: str) -> RemoteManifest:
        """The manifest `reference` (a tag or a digest) names; its digest is computed from the
        bytes and must be the one asked for."""
        wanted: Digest | None = None
        if ":" in reference:
            try:
                wanted = Digest.parse(reference)
            except InvalidDigest:
                raise UpstreamError(INVALID, f"invalid digest {reference[:100]!r}") from None
        where = f"{self.registry}/{repository}:{reference}"
        response = await self._request(
            repository, f"manifests/{reference}", {"Accept": ACCEPT}, where
        )
        try:
            payload = await self._read_limited(response, MAX_MANIFEST_BYTES, where)
            content_type = mediatypes.bare(response.headers.get("Content-Type", ""))
            announced = response.headers.get("Docker-Content-Digest", "")
        finally:
            response.release()
        computed = Digest.of(payload, wanted.algorithm if wanted else "sha256")
        if wanted is not None and computed != wanted:
            raise UpstreamError(INVALID, f"{where}: the manifest's digest is {computed}")
        if wanted is None and announced.startswith("sha256:") and announced != str(computed):
            raise UpstreamError(
                INVALID, f"{where}: the manifest's digest is {computed}, not {announced}"
            )
        # Some registries answer application/json: then the document's mediaType decides.
        if content_type not in mediatypes.MANIFESTS:
            content_type = ""
        try:
            parsed = parse_manifest(payload, content_type, computed)
        except InvalidManifest as exc:
            raise UpstreamError(INVALID, f"{where}: {exc}") from None
        return RemoteManifest(parsed.media_type, payload, str(computed))

    def blob(self, repository: str, digest: str) -> AbstractAsyncContextManager[RemoteBlob]:
        """The blob's response, streamed; the caller verifies its digest."""
        return self._blob(repository, digest)

    @asynccontextmanager
    async def _blob(self, repository: str, digest: str) -> AsyncIterator[RemoteBlob]:
        where = f"{self.registry}/{repository}@{digest}"
        response = await self._request(repository, f"blobs/{digest}", {}, where, whole=False)
        try:
            if response.content_length is None:
                raise UpstreamError(INVALID, f"{where}: the upstream did not send its size")
            yield RemoteBlob(response.content_length, response, where)
        finally:
            response.release()

    async def blob_size(self, repository: str, digest: str) -> int:
        """The size the upstream gives blob `digest` in the repository (a HEAD): it holds the
        blob there."""
        where = f"{self.registry}/{repository}@{digest}"
        response = await self._request(repository, f"blobs/{digest}", {}, where, method="HEAD")
        response.release()
        if response.content_length is None:
            raise UpstreamError(INVALID, f"{where}: the upstream did not send its size")
        return response.content_length

    async def tags(self, repository: str, limit: int) -> list[str]:
        """Up to `limit` tags of the repository, in the upstream's order."""
        where = f"{self.registry}/{repository}"
        response = await self._request(repository, f"tags/list?n={limit}", {}, where)
        try:
            body = await self._read_limited(response, MAX_DOCUMENT_BYTES, where)
        finally:
            response.release()
        try:
            document = json.loads(body)
        except ValueError:
            raise UpstreamError(INVALID, f"{where}: the tag list is not JSON") from None
        tags = document.get("tags") if isinstance(document, dict) else None
        if not isinstance(tags, list):
            return []
        return [tag for tag in tags if isinstance(tag, str)][:limit]

    # Requests and authentication

    async def _request(
        self,
        repository: str,
        path: str,
        headers: Mapping[str, str],
        where: str,
        method: str = "GET",
        whole: bool = True,
    ) -> aiohttp.ClientResponse:
        """GET (or `method`) /v2/<repository>/<path> with the authorization the registry
        asks for; any answer but a success becomes an UpstreamError."""
        base = await self._resolve_base(where)
        scope = f"repository:{repository}:pull"
        url = f"{base}/v2/{repository}/{path}"
        for attempt in range(2):
            sent = dict(headers)
            authorization = await self._authorization(scope, where)
            if authorization:
                sent["Authorization"] = authorization
            response = await self._send(method, url, sent, where, whole)
            if response.status == 401 and attempt == 0:
                challenge = Challenge.parse(response.headers.get("WWW-Authenticate"))
                # A first challenge here (the ping passed), or a token that lapsed: once more.
                if challenge is not None and (
                    challenge != self._challenge or scope in self._tokens
                ):
                    response.release()
                    self._challenge = challenge
                    self._tokens.pop(scope, None)
                    continue
            if response.status < 300:
                return response
            response.release()
            raise _status_error(response.status, where)
        raise AssertionError("unreachable")

    async def _send(
        self, method: str, url: str, headers: Mapping[str, str], where: str, whole: bool
    ) -> aiohttp.ClientResponse:
        try:
            # The answer's headers are bounded in total whatever follows them.
            async with asyncio.timeout(TOTAL_SECONDS):
                return await self._http().request(
                    method, url, headers=headers, ssl=self._ssl(url), timeout=_timeout(whole)
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise UpstreamError(UNREACHABLE, f"{where}: {_describe(exc)}") from None

    async def _resolve_base(self, where: str) -> str:
        """The first scheme at which the registry answers `/v2/`; its challenge is kept."""
        if self._base is not None:
            return self._base
        failure: BaseException | None = None
        for scheme in self._schemes:
            url = f"{scheme}://{self._host}/v2/"
            try:
                async with self._http().get(url, ssl=self._ssl(url), timeout=_timeout()) as answer:
                    if answer.status == 401:
                        self._challenge = Challenge.parse(answer.headers.get("WWW-Authenticate"))
                    elif answer.status >= 500:
                        raise _status_error(answer.status, where)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                failure = exc
                continue
            self._base = f"{scheme}://{self._host}"
            return self._base
        assert failure is not None
        raise UpstreamError(UNREACHABLE, f"{where}: {_describe(failure)}")

    async def _authorization(self, scope: str, where: str) -> str | None:
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            if self._credentials is None:
                return None
            return _basic(self._credentials)
        if challenge.scheme != "bearer":
            return None
        if scope not in self._tokens:
            self._tokens[scope] = f"Bearer {await self._token(challenge, scope, where)}"
        return self._tokens[scope]

    async def _token(self, challenge: Challenge, scope: str, where: str) -> str:
        realm = challenge.params.get("realm")
        if not realm or not realm.startswith(("https://", "http://")):
            raise UpstreamError(INVALID, f"{where}: the registry's token realm is not a URL")
        query = {"scope": scope}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        headers = {"Authorization": _basic(self._credentials)} if self._credentials else {}
        try:
            async with self._http().get(
                realm, params=query, headers=headers, ssl=self._ssl(realm), timeout=_timeout()
            ) as answer:
                if answer.status >= 300:
                    raise _status_error(answer.status, f"{where} (token)")
                body = await self._read_limited(answer, MAX_DOCUMENT_BYTES, f"{where} (token)")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise UpstreamError(UNREACHABLE, f"{where} (token): {_describe(exc)}") from None
        try:
            document: Any = json.loads(body)
        except ValueError:
            raise UpstreamError(INVALID, f"{where}: the token answer is not JSON") from None
        token = (
            document.get("token") or document.get("access_token")
            if isinstance(document, dict)
            else None
        )
        if not isinstance(token, str) or not token:
            raise UpstreamError(INVALID, f"{where}: the token answer holds no token")
        return token

    @staticmethod
    async def _read_limited(response: aiohttp.ClientResponse, limit: int, where: str) -> bytes:
        if response.content_length is not None and response.content_length > limit:
            raise UpstreamError(INVALID, f"{where}: the answer is larger than {limit} bytes")
        body = bytearray()
        try:
            async for chunk in response.content.iter_any():
                body += chunk
                if len(body) > limit:
                    raise UpstreamError(
                        INVALID, f"{where}: the answer is larger than {limit} bytes"
                    )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamError(UNREACHABLE, f"{where}: {_describe(exc)}") from None
        return bytes(body)


def _basic(credentials: Credentials) -> str:
    pair = f"{credentials.username}:{credentials.password}".encode()
    return f"Basic {base64.b64encode(pair).decode()}"


def _status_error(status: int, where: str) -> UpstreamError:
    if status in (401, 403):
        return UpstreamError(UNAUTHORIZED, f"{where}: the upstream refused access ({status})")
    if status == 404:
        return UpstreamError(NOT_FOUND, f"{where}: not found upstream")
    if status == 429:
        return UpstreamError(TOO_MANY_REQUESTS, f"{where}: the upstream asks to slow down")
    if status >= 500:
        return UpstreamError(UNREACHABLE, f"{where}: the upstream failed ({status})")
    return UpstreamError(INVALID, f"{where}: the upstream answered {status}")
