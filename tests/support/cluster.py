"""Talk to a Wharf's control plane as its users do: log in like `oc login`, call the API with
requests, and drive the real kubectl with a kubeconfig of its own."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml

from tests.support.server import WharfProcess, end_process

KUBECTL_TIMEOUT = 60.0
CHALLENGING_CLIENT = "openshift-challenging-client"
RBAC = "rbac.authorization.k8s.io"


def login(api_url: str, ca_file: Path, user: str, password: str) -> str:
    """Log in like `oc login`: the challenging client's implicit grant; returns the token."""
    response = requests.get(
        f"{api_url}/oauth/authorize",
        params={"client_id": CHALLENGING_CLIENT, "response_type": "token"},
        headers={"X-CSRF-Token": "1"},
        auth=(user, password),
        allow_redirects=False,
        verify=str(ca_file),
        timeout=30,
    )
    assert response.status_code == 302, (response.status_code, response.text)
    fragment = parse_qs(urlsplit(response.headers["Location"]).fragment)
    token = fragment["access_token"][0]
    assert token.startswith("sha256~"), token
    return token


def unique(prefix: str) -> str:
    """A DNS-1123 name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Api(requests.Session):
    """A requests session against the API: the CA trusted, `path` relative to the API root."""

    def __init__(self, base: str, ca_file: Path, token: str | None = None) -> None:
        super().__init__()
        self.base = base
        self.verify = str(ca_file)
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if url.startswith("/"):
            url = self.base + url
        kwargs.setdefault("timeout", 30)
        # Explicitly: requests lets REQUESTS_CA_BUNDLE override a session's `verify`.
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)


@dataclass
class User:
    name: str
    password: str
    token: str
    api: Api
    kubeconfig: Path


@functools.cache
def kubectl_version() -> tuple[int, int]:
    """(major, minor) of the machine's kubectl."""
    result = subprocess.run(
        ["kubectl", "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=KUBECTL_TIMEOUT,
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"},
    )
    version = json.loads(result.stdout)["clientVersion"]
    return int(version["major"]), int("".join(c for c in version["minor"] if c.isdigit()))


@dataclass
class Kubectl:
    """The machine's kubectl with a kubeconfig of ours; nothing of the machine's is read."""

    kubeconfig: Path
    home: Path

    @staticmethod
    def require(minor: int, what: str) -> None:
        """Skip the test when kubectl is older than 1.`minor` (Debian 12 ships 1.20)."""
        if kubectl_version() < (1, minor):
            major, have = kubectl_version()
            pytest.skip(f"kubectl {major}.{have} predates {what} (1.{minor})")

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "KUBECONFIG": str(self.kubeconfig),
        }

    def argv(self, args: Sequence[str]) -> list[str]:
        return ["kubectl", "--kubeconfig", str(self.kubeconfig), *args]

    def run(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = KUBECTL_TIMEOUT,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.argv(args),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    @contextmanager
    def background(self, *args: str) -> Iterator[Output]:
        """Run a long-lived kubectl (`get -w`); its output is collected as it comes."""
        process = subprocess.Popen(
            self.argv(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
        )
        output = Output(process)
        try:
            yield output
        finally:
            end_process(process)
            output.join()


class Output:
    """The stdout and stderr of a running process, read by threads, waited on with a bound."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self._lines: list[str] = []
        self._errors: list[str] = []
        self._changed = threading.Condition()
        self._threads = [
            threading.Thread(target=self._pump, args=(process.stdout, self._lines), daemon=True),
            threading.Thread(target=self._pump, args=(process.stderr, self._errors), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _pump(self, stream: Any, into: list[str]) -> None:
        for line in stream:
            with self._changed:
                into.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def lines(self) -> list[str]:
        with self._changed:
            return list(self._lines)

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> list[str]:
        """Wait until `predicate(lines)` holds; fail with what was seen after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self._lines)):
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._alive()):
                    raise AssertionError(
                        f"not seen within {timeout}s; stdout: {self._lines}; stderr: {self._errors}"
                    )
                self._changed.wait(min(left, 0.5))
            return list(self._lines)

    def _alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=10)


def write_kubeconfig(
    path: Path, server: str, ca_file: Path, token: str, namespace: str = ""
) -> Path:
    context: dict[str, Any] = {"cluster": "wharf", "user": "wharf"}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "wharf", "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": "wharf", "user": {"token": token}}],
        "contexts": [{"name": "wharf", "context": context}],
        "current-context": "wharf",
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


class Cluster:
    """One Wharf's control plane, as the tests use it: kubeadmin, and users made on demand."""

    def __init__(self, wharf: WharfProcess, workdir: Path) -> None:
        self.wharf = wharf
        self.workdir = workdir
        self.admin_token = login(
            wharf.api_url, wharf.ca_file, "kubeadmin", wharf.kubeadmin_password
        )
        self.admin = self.api(self.admin_token)

    @property
    def url(self) -> str:
        return self.wharf.api_url

    def api(self, token: str | None = None) -> Api:
        return Api(self.wharf.api_url, self.wharf.ca_file, token)

    def login(self, name: str, password: str) -> str:
        return login(self.wharf.api_url, self.wharf.ca_file, name, password)

    def add_user(self, name: str, password: str | None = None) -> tuple[str, str]:
        """Add `name` to the htpasswd file; returns (name, password)."""
        from wharf.auth.htpasswd import Htpasswd

        password = password or uuid.uuid4().hex
        Htpasswd(self.wharf.data_dir / "auth" / "htpasswd").set_password(name, password)
        return name, password

    def user(self, prefix: str = "user") -> User:
        """A new user, logged in once: they have a User object and a token."""
        name, password = self.add_user(unique(prefix))
        token = self.login(name, password)
        return User(name, password, token, self.api(token), self.kubeconfig(token, name))

    def kubeconfig(self, token: str, label: str = "") -> Path:
        path = self.workdir / "kubeconfigs" / f"{label or uuid.uuid4().hex[:8]}.yaml"
        return write_kubeconfig(path, self.url, self.wharf.ca_file, token)

    def kubectl(self, token: str | None = None, kubeconfig: Path | None = None) -> Kubectl:
        config = kubeconfig or self.kubeconfig(token or self.admin_token)
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        return Kubectl(config, home)

    def new_project(self, api: Api, name: str | None = None) -> str:
        name = name or unique("proj")
        response = api.post(
            "/apis/project.openshift.io/v1/projectrequests",
            json={
                "apiVersion": "project.openshift.io/v1",
                "kind": "ProjectRequest",
                "metadata": {"name": name},
            },
        )
        assert response.status_code == 201, response.text
        return name

    def service_account_token(
        self, namespace: str, account: str = "builder", seconds: int = 3600
    ) -> str:
        """A TokenRequest for the service account, as the cluster admin asks it."""
        response = self.admin.post(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
            json={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": seconds},
            },
        )
        assert response.status_code == 201, response.text
        token: str = response.json()["status"]["token"]
        return token

    def revoke(self, token: str) -> None:
        """Delete the OAuthAccessToken of a user's token, as `oc delete oauthaccesstoken`."""
        response = self.admin.delete(
            f"/apis/oauth.openshift.io/v1/oauthaccesstokens/{oauth_token_name(token)}"
        )
        assert response.status_code == 200, response.text

    def expired_token(self, user: str, age: int = 7200, lifetime: int = 3600) -> str:
        """A token of `user` (who has logged in once) issued `age` seconds ago for `lifetime`
        seconds: expired. Tokens are not made by the API, so it is written to the database the
        Wharf process reads, as a token issued then would have been."""
        from wharf.auth.resources import OAUTH_ACCESS_TOKENS

        found = self.admin.get(f"/apis/user.openshift.io/v1/users/{user}")
        assert found.status_code == 200, found.text
        token = "sha256~" + _b64(os.urandom(32))
        issued = _timestamp(time.time() - age)
        record = {
            "apiVersion": "oauth.openshift.io/v1",
            "kind": "OAuthAccessToken",
            "metadata": {
                "name": oauth_token_name(token),
                "uid": str(uuid.uuid4()),
                "creationTimestamp": issued,
            },
            "clientName": CHALLENGING_CLIENT,
            "expiresIn": lifetime,
            "scopes": ["user:full"],
            "redirectURI": "",
            "userName": user,
            "userUID": found.json()["metadata"]["uid"],
        }

        self._write_record(OAUTH_ACCESS_TOKENS, record)
        return token

    def expired_service_account_token(
        self, namespace: str, account: str = "builder", age: int = 60
    ) -> str:
        """A token of the service account that expired `age` seconds ago, written to the
        database as a TokenRequest made then would have left it."""
        from wharf.auth.resources import SERVICE_ACCOUNT_TOKENS

        found = self.admin.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}")
        assert found.status_code == 200, found.text
        token = "wharfsa~" + _b64(os.urandom(32))
        secret = token.removeprefix("wharfsa~")
        name = "wharfsa~" + _b64(hashlib.sha256(secret.encode()).digest())
        moment = time.time()
        record = {
            "metadata": {
                "name": name,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": _timestamp(moment - age - 3600),
            },
            "spec": {
                "namespace": namespace,
                "serviceAccountName": account,
                "serviceAccountUID": found.json()["metadata"]["uid"],
                "expirationTimestamp": _timestamp(moment - age),
            },
        }
        self._write_record(SERVICE_ACCOUNT_TOKENS, record)
        return token

    def _write_record(self, resource: str, record: dict[str, Any]) -> None:
        """Store `record` in the Wharf's database, as the process itself would."""
        from wharf.db.database import open_database, sqlite_url
        from wharf.db.objects import Key, ObjectStore

        async def write() -> None:
            url = self.wharf.database_url or sqlite_url(self.wharf.data_dir.resolve())
            database = open_database(url)
            try:
                async with ObjectStore(database).transaction() as tx:
                    await tx.create(Key(resource, "", record["metadata"]["name"]), record)
            finally:
                await database.dispose()

        asyncio.run(write())

    def bind(
        self,
        namespace: str,
        role: str,
        subject: Mapping[str, str],
        kind: str = "ClusterRole",
        api: Api | None = None,
    ) -> requests.Response:
        """A RoleBinding of `role` to `subject` in `namespace`."""
        return (api or self.admin).post(
            f"/apis/{RBAC}/v1/namespaces/{namespace}/rolebindings",
            json=rolebinding(unique("rb"), role, subject, kind),
        )


def _timestamp(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def oauth_token_name(token: str) -> str:
    """The name of a token's OAuthAccessToken: `sha256~` and the unpadded base64url of the
    sha256 of the token without its `sha256~`."""
    secret = token.removeprefix("sha256~")
    return "sha256~" + _b64(hashlib.sha256(secret.encode()).digest())


def user_subject(name: str) -> dict[str, str]:
    return {"kind": "User", "apiGroup": RBAC, "name": name}


def group_subject(name: str) -> dict[str, str]:
    return {"kind": "Group", "apiGroup": RBAC, "name": name}


def service_account_subject(namespace: str, name: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "namespace": namespace, "name": name}


def rolebinding(
    name: str, role: str, subject: Mapping[str, str], kind: str = "ClusterRole"
) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC, "kind": kind, "name": role},
        "subjects": [dict(subject)],
    }


def assert_status(
    response: requests.Response, code: int, reason: str, message_part: str = ""
) -> dict[str, Any]:
    """The answer is a Kubernetes Status with this code and reason."""
    assert response.status_code == code, (response.status_code, response.text)
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["kind"] == "Status", body
    assert body["apiVersion"] == "v1", body
    assert body["status"] == "Failure", body
    assert body["code"] == code, body
    assert body["reason"] == reason, body
    assert message_part in body.get("message", ""), body
    return body


def watch_events(
    api: Api, path: str, params: Mapping[str, str], count: int, timeout: float = 15.0
) -> list[dict[str, Any]]:
    """Read `count` events of a watch (or fewer if the server ends it within `timeout`)."""
    query = {"watch": "true", "timeoutSeconds": str(int(timeout)), **params}
    events: list[dict[str, Any]] = []
    with api.get(path, params=query, stream=True, timeout=timeout + 10) as response:
        assert response.status_code == 200, response.text
        for line in response.iter_lines():
            if not line:
                continue
            events.append(json.loads(line))
            if len(events) >= count:
                break
    return events


# The integrated registry: TLS with the cluster's CA, cluster tokens as credentials.


@contextmanager
def integrated_cluster(base: Path) -> Iterator[Cluster]:
    """A Wharf whose registry runs as users run it (TLS, cluster logins and permissions,
    image streams), seen through its control plane with kubeadmin logged in."""
    from tests.support.server import running_wharf

    with running_wharf(base / "data", integrated=True) as process:
        yield Cluster(process, base)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def registry_session(wharf: WharfProcess, authorization: str | None = None) -> requests.Session:
    """A session for the registry: its CA trusted, and this Authorization on every request."""
    session = requests.Session()
    session.verify = str(wharf.ca_file)
    session.trust_env = False  # else REQUESTS_CA_BUNDLE would override the CA
    if authorization is not None:
        session.headers["Authorization"] = authorization
    return session
