"""The HTTPS client of the API: bearer token, trust, and Kubernetes `Status` errors turned into
`error: <message>`."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
import urllib3

from .errors import ApiFailure, CliError
from .kubeconfig import Connection

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
MERGE_PATCH = "application/merge-patch+json"
USER_AGENT = "wharf/0.1"
_ca_files: dict[bytes, str] = {}


def _remove_ca_files() -> None:
    for path in _ca_files.values():
        with contextlib.suppress(OSError):
            os.unlink(path)


def ca_file(pem: bytes) -> str:
    """A file holding `pem`, for requests' `verify=`; removed when the process ends."""
    if pem not in _ca_files:
        if not _ca_files:
            atexit.register(_remove_ca_files)
        fd, path = tempfile.mkstemp(prefix="wharf-ca-", suffix=".crt")
        with os.fdopen(fd, "wb") as stream:
            stream.write(pem)
        _ca_files[pem] = path
    return _ca_files[pem]


def system_trust() -> str | bool:
    """The system's trust store, as requests' `verify=` (requests alone would use certifi)."""
    for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if os.environ.get(variable):
            return os.environ[variable]
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, paths.capath, paths.openssl_capath):
        if candidate and Path(candidate).exists():
            return candidate
    return True


def verify_for(ca_data: bytes | None, insecure: bool) -> str | bool:
    if insecure:
        return False
    if ca_data:
        return ca_file(ca_data)
    return system_trust()


def _host_of(url: str) -> str:
    parsed = urlparse(url)
    return parsed.netloc or url


def failure_of(response: requests.Response) -> ApiFailure:
    """The error an API answer carries: its Status message, else its HTTP status."""
    code = response.status_code
    body: Any = None
    with contextlib.suppress(ValueError):
        body = response.json()
    if code == 401:
        message = "You must be logged in to the server (Unauthorized)"
        return ApiFailure(code, "Unauthorized", message)
    if isinstance(body, dict) and body.get("kind") == "Status":
        message = str(body.get("message") or body.get("reason") or f"HTTP {code}")
        return ApiFailure(code, str(body.get("reason") or ""), message)
    text = response.reason or ""
    return ApiFailure(code, text, f"the server responded with {code} {text}".strip())


class Client:
    def __init__(
        self, server: str, token: str | None, verify: str | bool, timeout: float = 30.0
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.verify = verify
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        if verify is False:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    @classmethod
    def for_connection(cls, connection: Connection) -> Client:
        return cls(
            connection.server,
            connection.token,
            verify_for(connection.ca_data, connection.insecure),
        )

    def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        headers: dict[str, str] | None = None,
        stream: bool = False,
        allow_redirects: bool = True,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
    ) -> requests.Response:
        """One request; connection and TLS problems become `CliError`s. HTTP errors do not."""
        url = path if "://" in path else f"{self.server}{path}"
        all_headers = {"Accept": accept, **(headers or {})}
        data: bytes | None = None
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = content_type
        try:
            return self.session.request(
                method,
                url,
                params=params,
                data=data,
                headers=all_headers,
                stream=stream,
                allow_redirects=allow_redirects,
                auth=auth,
                # Given with each request: requests would let $REQUESTS_CA_BUNDLE override a
                # session's `verify`.
                verify=self.verify,
                timeout=None if stream else (timeout or self.timeout),
            )
        except requests.exceptions.SSLError as exc:
            raise CliError(_tls_problem(self.server, exc)) from None
        except requests.exceptions.ConnectionError as exc:
            host = _host_of(self.server)
            if "refused" in str(exc).lower():
                raise CliError(
                    f"The connection to the server {host} was refused - did you specify the "
                    "right host or port?"
                ) from None
            raise CliError(f"unable to connect to the server {host}: {_reason(exc)}") from None
        except requests.exceptions.Timeout:
            raise CliError(f"the server {_host_of(self.server)} did not answer in time") from None
        except requests.exceptions.RequestException as exc:
            raise CliError(f"request to {url} failed: {_reason(exc)}") from None

    def request(self, method: str, path: str, **options: Any) -> requests.Response:
        """Like `send`, and an API error answer raises its `ApiFailure`."""
        response = self.send(method, path, **options)
        if response.status_code >= 400:
            raise failure_of(response)
        return response

    def json(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        response = self.request(method, path, **options)
        try:
            answer = response.json()
        except ValueError:
            raise CliError(f"the server's answer to {method} {path} is not JSON") from None
        if not isinstance(answer, dict):
            raise CliError(f"the server's answer to {method} {path} is not an object")
        return answer

    def get(
        self, path: str, params: dict[str, str] | None = None, accept: str = "application/json"
    ) -> dict[str, Any]:
        return self.json("GET", path, params=params, accept=accept)

    def post(self, path: str, body: Any) -> dict[str, Any]:
        return self.json("POST", path, body=body)

    def put(self, path: str, body: Any) -> dict[str, Any]:
        return self.json("PUT", path, body=body)

    def patch(self, path: str, body: Any, content_type: str = MERGE_PATCH) -> dict[str, Any]:
        return self.json("PATCH", path, body=body, content_type=content_type)

    def delete(self, path: str) -> dict[str, Any]:
        return self.json("DELETE", path)

    def watch(
        self, path: str, params: dict[str, str], accept: str = "application/json"
    ) -> Iterator[dict[str, Any]]:
        """The events of a watch, as they come: {"type": ..., "object": ...}."""
        response = self.request(
            "GET", path, params={**params, "watch": "1"}, accept=accept, stream=True
        )
        with response:
            try:
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except ValueError:
                        raise CliError("the server sent a watch event that is not JSON") from None
                    if isinstance(event, dict):
                        yield event
            except requests.exceptions.RequestException as exc:
                raise CliError(f"the watch was interrupted: {_reason(exc)}") from None

    def close(self) -> None:
        self.session.close()


def _reason(exc: Exception) -> str:
    """The innermost reason of a requests/urllib3 error, without the wrapper chatter
    (`HTTPSConnection(host=..., port=...): ` and `('Connection aborted.', ...)`)."""
    current: BaseException = exc
    while True:
        inner = next((a for a in current.args if isinstance(a, BaseException)), None)
        if inner is not None:
            current = inner
            continue
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException) and reason is not current:
            current = reason
            continue
        break
    text = re.sub(r"^\w+Connection(Pool)?\([^)]*\): ", "", str(current))
    return text or type(current).__name__


def _tls_problem(server: str, exc: Exception) -> str:
    reason = _reason(exc)
    if "CERTIFICATE_VERIFY_FAILED" in reason or "certificate verify failed" in reason:
        return (
            f"the server {server} uses a certificate signed by an unknown authority: pass "
            "--certificate-authority FILE (a Wharf server's is DATA_DIR/tls/ca.crt) or "
            "--insecure-skip-tls-verify to `wharf login`"
        )
    return f"TLS handshake with {server} failed: {reason}"
