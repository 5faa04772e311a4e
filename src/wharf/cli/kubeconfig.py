"""Reading and writing the kubeconfig file that `wharf login` shares with kubectl and oc.

Names follow oc: the cluster is the server's `host:port` with dots turned into dashes, the user
is `NAME/cluster` and the context `namespace/cluster/NAME`."""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from .errors import CliError


def config_path(explicit: str | None = None) -> Path:
    """`--kubeconfig`, else the first existing file of $KUBECONFIG (or its first entry), else
    ~/.kube/config."""
    if explicit:
        return Path(explicit).expanduser()
    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    for path in paths:
        if Path(path).expanduser().exists():
            return Path(path).expanduser()
    if paths:
        return Path(paths[0]).expanduser()
    return Path.home() / ".kube" / "config"


def normalize_server(server: str) -> str:
    """`127.0.0.1:8443` -> `https://127.0.0.1:8443`; no trailing slash."""
    server = server.strip()
    if "://" not in server:
        server = f"https://{server}"
    try:
        parsed = urlparse(server)
        parsed.port  # noqa: B018  (raises ValueError on a port that is no port)
    except ValueError as exc:
        raise CliError(f"invalid server URL {server!r}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise CliError(f"invalid server URL {server!r}: give https://HOST:PORT")
    return server.rstrip("/")


def cluster_nickname(server: str) -> str:
    parsed = urlparse(server)
    host = parsed.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return f"{host}:{port}".replace(".", "-")


def user_nickname(user: str, cluster: str) -> str:
    return f"{user}/{cluster}"


def context_nickname(namespace: str, cluster: str, user: str) -> str:
    return f"{namespace}/{cluster}/{user}"


@dataclass(frozen=True)
class Connection:
    """Everything needed to talk to the API, as the current context says."""

    server: str
    token: str | None
    ca_data: bytes | None  # PEM
    insecure: bool
    namespace: str
    context: str
    cluster: str
    user: str


class KubeConfig:
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def load(cls, path: Path) -> KubeConfig:
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            raise CliError(f"cannot read kubeconfig {path}: {exc.strerror or exc}") from None
        try:
            data = yaml.safe_load(text) if text.strip() else {}
        except yaml.YAMLError as exc:
            raise CliError(f"kubeconfig {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise CliError(f"kubeconfig {path} is not a mapping")
        data.setdefault("apiVersion", "v1")
        data.setdefault("kind", "Config")
        for section in ("clusters", "contexts", "users"):
            if not isinstance(data.get(section), list):
                data[section] = []
        data.setdefault("preferences", {})
        return cls(path, data)

    def save(self) -> None:
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(self.data, default_flow_style=False, sort_keys=True)
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".kubeconfig-")
        try:
            with os.fdopen(fd, "w") as stream:
                stream.write(text)
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    # Named entries

    def _entry(self, section: str, name: str) -> dict[str, Any] | None:
        for entry in self.data[section]:
            if isinstance(entry, dict) and entry.get("name") == name:
                body = entry.get(section[:-1])
                return body if isinstance(body, dict) else {}
        return None

    def _set(self, section: str, name: str, body: dict[str, Any]) -> None:
        key = section[:-1]
        for entry in self.data[section]:
            if isinstance(entry, dict) and entry.get("name") == name:
                entry[key] = body
                return
        self.data[section].append({"name": name, key: body})

    def cluster(self, name: str) -> dict[str, Any] | None:
        return self._entry("clusters", name)

    def user(self, name: str) -> dict[str, Any] | None:
        return self._entry("users", name)

    def context(self, name: str) -> dict[str, Any] | None:
        return self._entry("contexts", name)

    def set_cluster(self, name: str, body: dict[str, Any]) -> None:
        self._set("clusters", name, body)

    def set_user(self, name: str, body: dict[str, Any]) -> None:
        self._set("users", name, body)

    def set_context(self, name: str, body: dict[str, Any]) -> None:
        self._set("contexts", name, body)

    @property
    def current_context(self) -> str:
        return str(self.data.get("current-context") or "")

    @current_context.setter
    def current_context(self, name: str) -> None:
        self.data["current-context"] = name

    def cluster_for_server(self, server: str) -> tuple[str, dict[str, Any]] | None:
        for entry in self.data["clusters"]:
            body = entry.get("cluster") if isinstance(entry, dict) else None
            if isinstance(body, dict) and str(body.get("server", "")).rstrip("/") == server:
                return str(entry.get("name")), body
        return None

    def ca_data(self, cluster: dict[str, Any]) -> bytes | None:
        """The PEM of a cluster's certificate authority, inline or from its file."""
        inline = cluster.get("certificate-authority-data")
        if inline:
            try:
                return base64.b64decode(str(inline), validate=True)
            except (binascii.Error, ValueError):
                raise CliError(
                    f"kubeconfig {self.path}: certificate-authority-data is not base64"
                ) from None
        path = cluster.get("certificate-authority")
        if path:
            file = Path(str(path)).expanduser()
            if not file.is_absolute():
                file = self.path.parent / file
            try:
                return file.read_bytes()
            except OSError as exc:
                raise CliError(
                    f"cannot read certificate authority {file}: {exc.strerror or exc}"
                ) from None
        return None

    def connection(self, context_name: str | None = None) -> Connection | None:
        """The connection of the named (default: current) context; None without one."""
        name = context_name or self.current_context
        if not name:
            return None
        context = self.context(name)
        if context is None:
            if context_name:
                raise CliError(f'context "{context_name}" does not exist in {self.path}')
            return None
        cluster_name = str(context.get("cluster") or "")
        cluster = self.cluster(cluster_name)
        if cluster is None or not cluster.get("server"):
            return None
        user_name = str(context.get("user") or "")
        user = self.user(user_name) or {}
        token = user.get("token")
        if not token and user.get("tokenFile"):
            try:
                token = Path(str(user["tokenFile"])).expanduser().read_text().strip()
            except OSError:
                token = None
        return Connection(
            server=str(cluster["server"]).rstrip("/"),
            token=str(token) if token else None,
            ca_data=self.ca_data(cluster),
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
            namespace=str(context.get("namespace") or "default"),
            context=name,
            cluster=cluster_name,
            user=user_name,
        )

    def switch_namespace(self, connection: Connection, namespace: str) -> str:
        """Make (or reuse) the oc-style context for `namespace` and make it current."""
        username = connection.user
        suffix = f"/{connection.cluster}"
        if username.endswith(suffix):
            username = username[: -len(suffix)]
        name = context_nickname(namespace, connection.cluster, username)
        self.set_context(
            name, {"cluster": connection.cluster, "namespace": namespace, "user": connection.user}
        )
        self.current_context = name
        return name
