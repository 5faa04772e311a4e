"""The upstream client against a real registry: Debian's docker-registry, open and behind
htpasswd (Basic) authentication."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import free_port
from tests.support.upstream import Upstream, running_upstream
from wharf.oci.mediatypes import OCI_INDEX, OCI_MANIFEST
from wharf.upstream.client import Credentials, RegistryClient, UpstreamError

USER = ("puller", "pull-secret-1")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    with running_upstream(tmp_path_factory.mktemp("upstream"), credentials=USER) as running:
        yield running


async def _failure(coroutine: object) -> UpstreamError:
    try:
        await coroutine  # type: ignore[misc]
    except UpstreamError as exc:
        return exc
    raise AssertionError("no UpstreamError")


def test_manifests_and_blobs_with_basic_auth(upstream: Upstream) -> None:
    image = upstream.push_image("lib/app", "v1")
    upstream.push_index("lib/multi", "v1")

    async def run() -> None:
        client = RegistryClient(upstream.host, insecure=True, credentials=Credentials(*USER))
        try:
            manifest = await client.manifest("lib/app", "v1")
            assert (manifest.digest, manifest.media_type) == (image.digest, OCI_MANIFEST)
            assert manifest.payload == image.payload
            by_digest = await client.manifest("lib/app", image.digest)
            assert by_digest == manifest
            assert (await client.manifest("lib/multi", "v1")).media_type == OCI_INDEX
            for digest, data in image.blobs.items():
                async with client.blob("lib/app", digest) as blob:
                    assert blob.size == len(data)
                    received = b"".join([chunk async for chunk in blob.chunks()])
                assert hashlib.sha256(received).hexdigest() == digest.removeprefix("sha256:")
            assert await client.tags("lib/app", 50) == ["v1"]
            missing = await _failure(client.manifest("lib/app", "nope"))
            assert missing.reason == "NotFound"
            other = "sha256:" + "0" * 64
            assert (await _failure(client.manifest("lib/app", other))).reason == "NotFound"
        finally:
            await client.close()

    asyncio.run(run())


def test_failures_have_reasons(upstream: Upstream) -> None:
    upstream.push_image("lib/app", "v2")

    async def run() -> None:
        anonymous = RegistryClient(upstream.host, insecure=True)
        wrong = RegistryClient(upstream.host, insecure=True, credentials=Credentials("x", "y"))
        secure = RegistryClient(upstream.host)  # HTTPS only: this one speaks plain HTTP
        nobody = RegistryClient(f"127.0.0.1:{free_port()}", insecure=True)
        try:
            for client, reason in (
                (anonymous, "Unauthorized"),
                (wrong, "Unauthorized"),
                (secure, "Unreachable"),
                (nobody, "Unreachable"),
            ):
                failure = await _failure(client.manifest("lib/app", "v2"))
                assert failure.reason == reason, (failure.reason, failure.message)
                assert "\n" not in failure.message
                assert "pull-secret" not in failure.message
        finally:
            for client in (anonymous, wrong, secure, nobody):
                await client.close()

    asyncio.run(run())


def test_a_digest_that_does_not_match_is_invalid(tmp_path: Path) -> None:
    # The upstream's storage holds the tag's manifest under another digest's name: a tampered
    # or broken upstream. The client computes the digest from the bytes and refuses.
    with running_upstream(tmp_path) as upstream:
        first = upstream.push_image("lib/app", "a")
        second = upstream.push_image("lib/app", "b")
        blobs = tmp_path / "upstream-data/docker/registry/v2/blobs/sha256"
        wrong = blobs / second.digest[7:9] / second.digest[7:] / "data"
        wrong.write_bytes(first.payload)

        async def run() -> UpstreamError:
            client = RegistryClient(upstream.host, insecure=True)
            try:
                return await _failure(client.manifest("lib/app", second.digest))
            finally:
                await client.close()

        failure = asyncio.run(run())
        assert failure.reason == "Invalid", failure.message


def test_a_bearer_challenge_is_answered_with_a_token(upstream: Upstream) -> None:
    """As Docker Hub and quay do: /v2/ asks for a Bearer token from a realm, which hands one
    out for the scope asked, to the credentials given. A small stand-in registry plays it."""
    from aiohttp import web

    image = upstream.push_image("lib/app", "bearer")
    asked: list[dict[str, str]] = []

    async def run() -> None:
        app = web.Application()
        port = free_port()
        realm = f"http://127.0.0.1:{port}/token"

        async def token(request: web.Request) -> web.Response:
            asked.append(dict(request.query))
            if request.headers.get("Authorization") != _basic(*USER):
                return web.Response(status=401)
            return web.json_response({"token": "t-" + request.query["scope"]})

        async def v2(request: web.Request) -> web.Response:
            challenge = f'Bearer realm="{realm}",service="stand-in"'
            scope = "repository:lib/app:pull"
            if request.headers.get("Authorization") != f"Bearer t-{scope}":
                return web.Response(status=401, headers={"WWW-Authenticate": challenge})
            if request.path == "/v2/":
                return web.Response()
            return web.Response(body=image.payload, headers={"Content-Type": OCI_MANIFEST})

        app.router.add_get("/token", token)
        app.router.add_get("/v2/{tail:.*}", v2)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            client = RegistryClient(
                f"127.0.0.1:{port}", insecure=True, credentials=Credentials(*USER)
            )
            manifest = await client.manifest("lib/app", image.digest)
            assert manifest.digest == image.digest
            await client.close()
            stranger = RegistryClient(f"127.0.0.1:{port}", insecure=True)
            failure = await _failure(stranger.manifest("lib/app", image.digest))
            assert failure.reason == "Unauthorized", failure.message
            await stranger.close()
        finally:
            await runner.cleanup()

    asyncio.run(run())
    assert asked[0] == {"scope": "repository:lib/app:pull", "service": "stand-in"}


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def _stand_in(routes: dict[str, Any]) -> tuple[Any, str]:
    """A small aiohttp registry answering GET `path` with `routes[path]`; (runner, host)."""
    from aiohttp import web

    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"127.0.0.1:{port}"


def test_tag_lists_and_token_answers_are_read_within_a_limit() -> None:
    """An upstream answering a tag list or a token with more than a MiB: refused as Invalid,
    not read whole into memory."""
    from aiohttp import web

    padding = "x" * (2 * 1024 * 1024)

    async def huge_tags(request: web.Request) -> web.Response:
        return web.json_response({"tags": ["v1"], "padding": padding})

    async def huge_token(request: web.Request) -> web.Response:
        return web.json_response({"token": "t", "padding": padding})

    async def run() -> None:
        runner, host = await _stand_in({"/v2/": _open, "/v2/lib/app/tags/list": huge_tags})
        guarded, guarded_host = await _stand_in({"/v2/": _token_guarded, "/token": huge_token})
        client = RegistryClient(host, insecure=True)
        token_client = RegistryClient(guarded_host, insecure=True)
        try:
            failure = await _failure(client.tags("lib/app", 50))
            assert failure.reason == "Invalid", failure.message
            assert "larger than" in failure.message
            failure = await _failure(token_client.manifest("lib/app", "v1"))
            assert failure.reason == "Invalid", failure.message
            assert "larger than" in failure.message
        finally:
            await client.close()
            await token_client.close()
            await runner.cleanup()
            await guarded.cleanup()

    asyncio.run(run())


async def _open(request: Any) -> Any:
    from aiohttp import web

    return web.Response()


async def _token_guarded(request: Any) -> Any:
    """A /v2/ probe that asks for a bearer token from this host's /token, and takes "t"."""
    from aiohttp import web

    if request.headers.get("Authorization") == "Bearer t":
        return web.Response()
    realm = f"http://{request.host}/token"
    return web.Response(status=401, headers={"WWW-Authenticate": f'Bearer realm="{realm}"'})


def test_an_upstream_that_trickles_its_answer_is_given_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A byte every little while keeps each read under its own limit: the whole answer
    (manifest, tag list, token, the /v2/ probe) is bounded in total all the same."""
    from aiohttp import web

    import wharf.upstream.client as client_module

    monkeypatch.setattr(client_module, "TOTAL_SECONDS", 2.0)

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 1000
        await response.prepare(request)
        for _ in range(1000):
            await response.write(b" ")
            await asyncio.sleep(0.2)
        return response

    async def run() -> None:
        slow, slow_host = await _stand_in(
            {"/v2/": _open, "/v2/lib/app/manifests/v1": trickle, "/v2/lib/app/tags/list": trickle}
        )
        guarded, guarded_host = await _stand_in({"/v2/": _token_guarded, "/token": trickle})

        async def trickled_headers(reader: asyncio.StreamReader, writer: Any) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\n")
            with contextlib.suppress(ConnectionError):
                for _ in range(1000):
                    writer.write(b"X-Slow: 1\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.2)

        probe_port = free_port()
        probe = await asyncio.start_server(trickled_headers, "127.0.0.1", probe_port)
        probe_host = f"127.0.0.1:{probe_port}"
        clients = [RegistryClient(host, insecure=True) for host in (slow_host, guarded_host)]
        clients.append(RegistryClient(probe_host, insecure=True))
        try:
            for attempt in (
                clients[0].manifest("lib/app", "v1"),
                clients[0].tags("lib/app", 50),
                clients[1].manifest("lib/app", "v1"),
                clients[2].manifest("lib/app", "v1"),
            ):
                failure = await asyncio.wait_for(_failure(attempt), 20)
                assert failure.reason == "Unreachable", failure.message
                assert "timed out" in failure.message
        finally:
            for client in clients:
                await client.close()
            for runner in (slow, guarded):
                await runner.cleanup()
            probe.close()

    asyncio.run(run())
