"""`wharf registry info|login|trust`, as `oc registry`: where the integrated registry is, a
podman login to it with the session's token, and its CA installed where podman looks.

The hosts come from what the server reports for image streams (`status.dockerImageRepository`
and `status.publicDockerImageRepository`), in the current project or `openshift`, as oc finds
them; without streams, the public host is the route `default-route` in
`openshift-image-registry`."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pwd
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import requests
import typer

from .client import USER_AGENT, _reason, ca_file, system_trust
from .errors import ApiFailure, CliError
from .state import NamespaceOption, Session, load_config, open_session, options

app = typer.Typer(
    no_args_is_help=True,
    help="The integrated registry: its hostnames, logging podman in, trusting its CA",
    rich_markup_mode=None,
)

IMAGE_API = "/apis/image.openshift.io/v1"
ROUTE = "/apis/route.openshift.io/v1/namespaces/openshift-image-registry/routes/default-route"
CERTS_DIR = Path("/etc/containers/certs.d")
PROBE_STREAM = "wharf-registry-info"


@dataclass(frozen=True)
class Hosts:
    public: str | None = None
    internal: str | None = None

    @property
    def preferred(self) -> str | None:
        """The host for clients outside the cluster: the public one, else the internal one."""
        return self.public or self.internal


def _host_of(repository: Any) -> str | None:
    """`127.0.0.1:5000` of `127.0.0.1:5000/demo/app`."""
    if not isinstance(repository, str) or "/" not in repository:
        return None
    return repository.split("/", 1)[0] or None


def _ignorable(failure: ApiFailure) -> bool:
    """Whether a look-up may fail quietly (not allowed, not there), unlike a bad login."""
    return failure.code != 401


def _from_streams(session: Session) -> Hosts | None:
    for namespace in dict.fromkeys((session.namespace, "openshift")):
        try:
            listing = session.client.get(f"{IMAGE_API}/namespaces/{namespace}/imagestreams")
        except ApiFailure as failure:
            if _ignorable(failure):
                continue
            raise
        for stream in listing.get("items") or []:
            status = stream.get("status") or {}
            hosts = Hosts(
                _host_of(status.get("publicDockerImageRepository")),
                _host_of(status.get("dockerImageRepository")),
            )
            if hosts.preferred:
                return hosts
    return None


def _route_host(session: Session) -> str | None:
    try:
        route = session.client.get(ROUTE)
    except ApiFailure as failure:
        if _ignorable(failure):
            return None
        raise
    host = (route.get("spec") or {}).get("host")
    if not host:
        ingress = (route.get("status") or {}).get("ingress") or [{}]
        host = ingress[0].get("host") if isinstance(ingress[0], dict) else None
    return str(host) if host else None


def _internal_by_dry_run(session: Session) -> str | None:
    """The internal host the server would report for a new stream here, asked with a dry run
    (which creates nothing); None where the user may not create streams."""
    try:
        stream = session.client.json(
            "POST",
            f"{IMAGE_API}/namespaces/{session.namespace}/imagestreams",
            params={"dryRun": "All"},
            body={
                "apiVersion": "image.openshift.io/v1",
                "kind": "ImageStream",
                "metadata": {"name": PROBE_STREAM},
            },
        )
    except ApiFailure as failure:
        if _ignorable(failure):
            return None
        raise
    return _host_of((stream.get("status") or {}).get("dockerImageRepository"))


def find_hosts(session: Session) -> Hosts:
    found = _from_streams(session)
    if found is not None:
        return found
    return Hosts(_route_host(session), _internal_by_dry_run(session))


def _verify(session: Session, insecure: bool) -> str | bool:
    """How to check the registry's certificate: the kubeconfig's CA (the registry's
    certificate is signed by the CA of the API), else the system's store."""
    if insecure or session.connection.insecure:
        return False
    if session.connection.ca_data:
        return ca_file(session.connection.ca_data)
    return system_trust()


def _probe(host: str, verify: str | bool, auth: tuple[str, str] | None) -> requests.Response:
    try:
        return requests.get(
            f"https://{host}/v2/",
            auth=auth,
            verify=verify,
            timeout=30,
            headers={"User-Agent": USER_AGENT},
        )
    except requests.exceptions.SSLError as exc:
        raise CliError(
            f"the registry {host} is not trusted ({_reason(exc)}): log in to the API with its "
            "CA (`wharf login --certificate-authority`) or pass --insecure"
        ) from None
    except requests.exceptions.RequestException as exc:
        raise CliError(f"registry could not be contacted at {host}: {_reason(exc)}") from None


def _no_host() -> CliError:
    return CliError(
        "the registry's hostname could not be determined: there are no image streams in this "
        "project or in openshift, and no route default-route in openshift-image-registry "
        "that you may read; name it with --registry"
    )


@app.command("info")
def info(
    ctx: typer.Context,
    public: Annotated[
        bool, typer.Option("--public", help="Print only the public hostname")
    ] = False,
    internal: Annotated[
        bool, typer.Option("--internal", help="Print only the internal hostname")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Also check that the registry answers there")
    ] = False,
    namespace: Annotated[str | None, NamespaceOption] = None,
) -> None:
    """Print the registry's public and internal hostnames."""
    if public and internal:
        raise CliError("only one of --internal or --public may be specified at a time")
    session = open_session(ctx, namespace)
    hosts = find_hosts(session)
    if not hosts.preferred:
        raise _no_host()
    if public and not hosts.public:
        raise CliError("registry does not have public hostname")
    if internal and not hosts.internal:
        raise CliError("registry does not have an internal hostname")
    if check:
        host = hosts.internal if internal else hosts.preferred
        assert host is not None
        _probe(host, _verify(session, False), None)
    if public:
        typer.echo(hosts.public)
    elif internal:
        typer.echo(hosts.internal)
    else:
        if hosts.public:
            typer.echo(f"Public:   {hosts.public}")
        if hosts.internal:
            typer.echo(f"Internal: {hosts.internal}")


def default_auth_file() -> Path:
    """Where podman keeps its logins: $REGISTRY_AUTH_FILE, else
    $XDG_RUNTIME_DIR/containers/auth.json, else ~/.config/containers/auth.json."""
    if os.environ.get("REGISTRY_AUTH_FILE"):
        return Path(os.environ["REGISTRY_AUTH_FILE"]).expanduser()
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    return Path.home() / ".config" / "containers" / "auth.json"


def _service_account_token(session: Session, name: str) -> str:
    namespace = session.namespace
    try:
        answer = session.client.post(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        )
    except ApiFailure as failure:
        if failure.code == 404:
            raise CliError(
                f"the service account {name} does not exist in namespace {namespace}"
            ) from None
        if failure.code == 403:
            raise CliError(
                f"you do not have permission to request a token of service account {name} in "
                f"namespace {namespace}"
            ) from None
        raise
    token = (answer.get("status") or {}).get("token")
    if not token:
        raise CliError("the server returned no token")
    return str(token)


def _updated_auths(path: Path | None, host: str, auth: str) -> str:
    """The auth file's text with `host`'s entry set; its other entries and keys kept."""
    config: Any = {}
    if path is not None:
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
        if text.strip():
            try:
                config = json.loads(text)
            except ValueError as exc:
                raise CliError(f"unable to parse existing credentials {path}: {exc}") from None
    if not isinstance(config, dict):
        raise CliError(f"{path} is not a JSON object")
    auths = config.setdefault("auths", {})
    if not isinstance(auths, dict):
        raise CliError(f"{path} does not look like an auth file: its 'auths' is not an object")
    auths[host] = {"auth": auth}
    return json.dumps(config, indent=2) + "\n"


def _write_file(path: Path, data: bytes, mode: int, hint: str = "") -> None:
    """Write `data` to `path` in one step (a reader never sees half a file)."""
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if mode == 0o600 else 0o755)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        raise CliError(f"cannot write {path}: {exc.strerror or exc}{hint}") from None


@app.command("login")
def login(
    ctx: typer.Context,
    service_account: Annotated[
        str | None,
        typer.Option(
            "--service-account", "-z", help="Log in as this service account of the project"
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            "--registry-config",
            "-a",
            help="The auth file to write ('-': print it); default: podman's "
            "($REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, "
            "~/.config/containers/auth.json)",
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option("--registry", help="The registry HOST[:PORT]; default: its public hostname"),
    ] = None,
    skip_check: Annotated[
        bool, typer.Option("--skip-check", help="Do not check the credentials at the registry")
    ] = False,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Do not verify the registry's certificate")
    ] = False,
    namespace: Annotated[str | None, NamespaceOption] = None,
) -> None:
    """Log podman in to the registry with your session's token (or a service account's)."""
    session = open_session(ctx, namespace)
    if service_account:
        username = f"system-serviceaccount-{session.namespace}-{service_account}"
        password = _service_account_token(session, service_account)
    else:
        if not session.connection.token:
            raise CliError("no token is currently in use for this session")
        # Any user name will do (the registry reads the token only); oc's has no colon.
        username, password = "user", session.connection.token
    host = registry
    if not host:
        hosts = find_hosts(session)
        host = hosts.preferred
        if not host:
            raise _no_host()
        which = "public hostname" if hosts.public else "internal hostname"
        typer.echo(f"info: Using registry {which} {host}", err=True)
    if not skip_check:
        answer = _probe(host, _verify(session, insecure), (username, password))
        if answer.status_code != 200:
            raise CliError(
                f"unable to check your credentials - pass --skip-check to bypass this error: "
                f"the registry {host} answered {answer.status_code} {answer.reason}"
            )
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    if to == "-":
        sys.stdout.write(_updated_auths(None, host, auth))
        return
    path = Path(to).expanduser() if to else default_auth_file()
    _write_file(path, _updated_auths(path, host, auth).encode(), 0o600)
    typer.echo(f"Saved credentials for {host} in {path}")


def home_of(user: str) -> Path | None:
    try:
        return Path(pwd.getpwnam(user).pw_dir)
    except KeyError:
        return None


def sudo_kubeconfig() -> Path | None:
    """Under sudo, the kubeconfig of the user who ran it: sudo gives root's $HOME and drops
    $KUBECONFIG, so `sudo wharf registry trust` would otherwise find no login."""
    user = os.environ.get("SUDO_USER")
    if os.geteuid() != 0 or not user or user == "root":
        return None
    home = home_of(user)
    path = home / ".kube" / "config" if home is not None else None
    return path if path is not None and path.is_file() else None


def _login_for_trust(ctx: typer.Context) -> None:
    """Use the sudo user's kubeconfig when no other was named and root's has no login."""
    given = options(ctx)
    if given.kubeconfig or os.environ.get("KUBECONFIG"):
        return
    if load_config(ctx).connection(given.context) is not None:
        return
    found = sudo_kubeconfig()
    if found is not None:
        given.kubeconfig = str(found)


def _what_to_pass(data_dir: Path | None, registry: str | None) -> str:
    """The exact flags that make `registry trust` work without a login."""
    local = Path("wharf-data")
    shown = data_dir or (local.absolute() if (local / "tls" / "ca.crt").is_file() else "DATA_DIR")
    missing = [] if data_dir else [f"--data-dir {shown}"]
    if not registry:
        missing.append("--registry HOST:PORT")
    return (
        f"pass {' '.join(missing)} (`wharf registry trust {' '.join(missing)}`; the data "
        "directory of `wharf serve`, and the registry's address: 127.0.0.1:5000 unless it was "
        "given --listen or --public-host), or name a kubeconfig with --kubeconfig (sudo leaves "
        "out $KUBECONFIG and changes $HOME)"
    )


def _ca_pem(ctx: typer.Context, data_dir: Path | None, registry: str | None = None) -> bytes:
    if data_dir is not None:
        path = data_dir / "tls" / "ca.crt"
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise CliError(
                f"cannot read the CA of data directory {data_dir} ({path}): {exc.strerror or exc}"
            ) from None
    else:
        connection = load_config(ctx).connection(options(ctx).context)
        if connection is None:
            raise CliError(
                f"not logged in, so the CA and the registry's hosts are unknown: "
                f"{_what_to_pass(None, registry)}"
            )
        if not connection.ca_data:
            raise CliError(
                f'the context "{connection.context}" has no certificate authority: give the '
                "server's data directory with --data-dir"
            )
        pem = connection.ca_data
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise CliError("the certificate authority is not a PEM certificate")
    return pem


@app.command("trust")
def trust(
    ctx: typer.Context,
    certs_dir: Annotated[
        Path,
        typer.Option("--certs-dir", help="Where to install it: <certs-dir>/<host>/ca.crt"),
    ] = CERTS_DIR,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Take the CA from this Wharf data directory (tls/ca.crt) rather than the "
            "kubeconfig's certificate-authority-data",
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry", help="The registry HOST[:PORT]; default: its public and internal hosts"
        ),
    ] = None,
    namespace: Annotated[str | None, NamespaceOption] = None,
) -> None:
    """Install Wharf's CA where podman, skopeo and buildah look for the registry's."""
    _login_for_trust(ctx)
    pem = _ca_pem(ctx, data_dir, registry)
    if registry:
        hosts = [registry]
    else:
        if load_config(ctx).connection(options(ctx).context) is None:
            raise CliError(
                f"not logged in, so the registry's hosts are unknown: "
                f"{_what_to_pass(data_dir, registry)}"
            )
        found = find_hosts(open_session(ctx, namespace))
        hosts = [h for h in dict.fromkeys((found.public, found.internal)) if h]
        if not hosts:
            raise _no_host()
    for host in hosts:
        if not host or "/" in host or host in (".", ".."):
            raise CliError(f'"{host}" is not a registry host')
        target = certs_dir / host / "ca.crt"
        hint = (
            " (run it as root, e.g. `sudo .venv/bin/wharf registry trust`, or choose another "
            "directory with --certs-dir: rootless podman also reads "
            "~/.config/containers/certs.d)"
        )
        _write_file(target, pem, 0o644, hint)
        typer.echo(f"Wrote the CA for {host} to {target}")
