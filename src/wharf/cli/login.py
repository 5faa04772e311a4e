"""`wharf login`, `logout` and `whoami`, which behave like oc's: the OAuth challenging-client
flow for a token, and a kubeconfig context that kubectl can use as it is."""

from __future__ import annotations

import base64
import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlparse

import requests
import typer

from ..auth.tokens import stored_name
from .client import Client, ca_file, failure_of, system_trust
from .errors import ApiFailure, CliError
from .kubeconfig import (
    Connection,
    KubeConfig,
    cluster_nickname,
    context_nickname,
    normalize_server,
    user_nickname,
)
from .state import load_config, open_session, options

DEFAULT_SERVER = "https://127.0.0.1:8443"
CHALLENGING_CLIENT = "openshift-challenging-client"
PROJECTS = "/apis/project.openshift.io/v1/projects"
ME = "/apis/user.openshift.io/v1/users/~"
MAX_LISTED_PROJECTS = 50


def _handshake_ok(server: str, verify: str | bool) -> bool:
    """Whether TLS to `server` verifies with `verify`; other failures are for later."""
    try:
        requests.get(f"{server}/healthz", verify=verify, timeout=10)
    except requests.exceptions.SSLError:
        return False
    except requests.exceptions.RequestException:
        return True  # not a trust problem: the real request reports it
    return True


def _read_ca(path: Path) -> bytes:
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read certificate authority {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise CliError(f"{path} holds no PEM certificate")
    return pem


def _trust(
    config: KubeConfig,
    server: str,
    certificate_authority: Path | None,
    insecure: bool,
    data_dir: Path,
) -> tuple[str | bool, dict[str, Any]]:
    """How to verify the server, and the kubeconfig cluster entry that says the same."""
    cluster: dict[str, Any] = {"server": server}
    if certificate_authority is not None:
        pem = _read_ca(certificate_authority)
        cluster["certificate-authority-data"] = base64.b64encode(pem).decode()
        return ca_file(pem), cluster
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
        return False, cluster
    if urlparse(server).scheme != "https":
        return True, cluster
    known = config.cluster_for_server(server)
    if known is not None:
        body = dict(known[1])
        if body.get("insecure-skip-tls-verify"):
            return False, body
        pem_known = config.ca_data(body)
        if pem_known and _handshake_ok(server, ca_file(pem_known)):
            return ca_file(pem_known), body
    system = system_trust()
    if _handshake_ok(server, system):
        return system, cluster
    local_ca = data_dir / "tls" / "ca.crt"
    if local_ca.is_file():
        pem = _read_ca(local_ca)
        if _handshake_ok(server, ca_file(pem)):
            cluster["certificate-authority-data"] = base64.b64encode(pem).decode()
            return ca_file(pem), cluster
    raise CliError(
        f"the server {server} uses a certificate signed by an unknown authority. Pass "
        "--certificate-authority FILE (a Wharf server's is DATA_DIR/tls/ca.crt; --data-dir "
        "names a local one) or, at your own risk, --insecure-skip-tls-verify"
    )


def _checks() -> str:
    """What a newcomer should look at when a login cannot reach the API."""
    return (
        "Check that `wharf serve` is running and that the URL is its API's (--api-listen, "
        f"{DEFAULT_SERVER} by default; the registry's port is not it), and that its "
        "certificate is trusted (--certificate-authority DATA_DIR/tls/ca.crt)"
    )


def check_api(server: str, verify: str | bool) -> None:
    """Fail early, saying what to check, unless `server` answers as a Kubernetes API does:
    a wrong port or path would otherwise end in a bare 404 from some later request."""
    try:
        response = Client(server, None, verify).send("GET", "/version")
    except CliError as exc:
        if urlparse(server).scheme == "http":
            https = "https" + server.removeprefix("http")
            raise CliError(f"{exc.message}. Wharf's API speaks TLS only: use {https}") from None
        raise CliError(f"{exc.message}. {_checks()}") from None
    version: Any = None
    with contextlib.suppress(ValueError):
        version = response.json()
    if response.status_code == 200 and isinstance(version, dict) and "gitVersion" in version:
        return
    answer = f"{response.status_code} {response.reason or ''}".strip()
    raise CliError(f"{server} is not a Wharf API: GET /version answered {answer}. {_checks()}")


def request_token(client: Client, username: str, password: str) -> str:
    """An OAuth access token for a user name and password, as `oc login` gets one."""
    endpoint = f"{client.server}/oauth/authorize"
    found = client.send("GET", "/.well-known/oauth-authorization-server")
    if found.status_code == 200:
        with contextlib.suppress(ValueError, AttributeError):
            endpoint = str(found.json().get("authorization_endpoint") or endpoint)
    response = client.send(
        "GET",
        endpoint,
        params={"client_id": CHALLENGING_CLIENT, "response_type": "token"},
        headers={"X-CSRF-Token": "1"},
        auth=(username, password),
        allow_redirects=False,
    )
    if response.status_code == 401:
        raise CliError(
            "Login failed (401 Unauthorized)\nVerify you have provided the correct credentials."
        )
    if response.status_code not in (301, 302, 303, 307):
        raise (
            failure_of(response)
            if response.status_code >= 400
            else CliError(f"the OAuth server answered {response.status_code} instead of a redirect")
        )
    location = urlparse(response.headers.get("Location", ""))
    answer = parse_qs(location.fragment) or parse_qs(location.query)
    if "error" in answer:
        description = answer.get("error_description", answer["error"])[0]
        raise CliError(f"the OAuth server refused the login: {description}")
    tokens = answer.get("access_token")
    if not tokens:
        raise CliError("the OAuth server sent no access token")
    return tokens[0]


def whoami_name(client: Client) -> str:
    return str(client.get(ME).get("metadata", {}).get("name", ""))


def project_names(client: Client) -> list[str]:
    items = client.get(PROJECTS).get("items") or []
    return sorted(str(p.get("metadata", {}).get("name", "")) for p in items)


def _choose_project(projects: list[str], preferred: str | None) -> str:
    if not projects:
        return ""
    if len(projects) == 1:
        return projects[0]
    if preferred in projects:
        return str(preferred)
    return "default" if "default" in projects else projects[0]


def _print_projects(projects: list[str], current: str) -> None:
    if not projects:
        typer.echo(
            "You don't have any projects. You can try to create a new project, by running\n\n"
            "    wharf new-project <projectname>\n"
        )
        return
    if len(projects) == 1:
        typer.echo(f'You have one project on this server: "{current}"\n')
    elif len(projects) > MAX_LISTED_PROJECTS:
        typer.echo(
            f"You have access to {len(projects)} projects, the list has been suppressed. You "
            "can list all projects with 'wharf projects'\n"
        )
    else:
        typer.echo(
            "You have access to the following projects and can switch between them with "
            "'wharf project <projectname>':\n"
        )
        for name in projects:
            typer.echo(f"  {'*' if name == current else ' '} {name}")
        typer.echo("")
    typer.echo(f'Using project "{current}".')


def _existing_credentials(
    current: Connection | None, server: str, verify: str | bool
) -> tuple[str, str] | None:
    """(user, token) of the current context when it is for `server` and still valid."""
    if current is None or current.server != server or not current.token:
        return None
    client = Client(server, current.token, verify)
    try:
        return whoami_name(client), current.token
    except ApiFailure:
        return None


def login(
    ctx: typer.Context,
    server_argument: Annotated[
        str | None, typer.Argument(metavar="[SERVER]", help="API server URL")
    ] = None,
    server_option: Annotated[
        str | None, typer.Option("--server", "-s", help="API server URL (as the argument)")
    ] = None,
    username: Annotated[str | None, typer.Option("--username", "-u", help="User name")] = None,
    password: Annotated[str | None, typer.Option("--password", "-p", help="Password")] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="Log in with this bearer token")
    ] = None,
    certificate_authority: Annotated[
        Path | None,
        typer.Option("--certificate-authority", help="PEM file of the CA to trust"),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure-skip-tls-verify", help="Do not verify the server's certificate (unsafe)"
        ),
    ] = False,
    data_dir: Annotated[
        Path,
        typer.Option(
            help="A local Wharf data directory whose tls/ca.crt to trust when nothing else does"
        ),
    ] = Path("wharf-data"),
) -> None:
    """Log in to a Wharf server and save the login in the kubeconfig."""
    config = load_config(ctx)
    try:
        current = config.connection(options(ctx).context)
    except CliError:
        current = None
    given = server_argument or server_option
    server = normalize_server(given or (current.server if current else DEFAULT_SERVER))
    verify, cluster = _trust(config, server, certificate_authority, insecure, data_dir)
    check_api(server, verify)
    anonymous = Client(server, None, verify)

    existing = None
    if token is None and username is None:
        existing = _existing_credentials(current, server, verify)
    if token is not None:
        try:
            name = whoami_name(Client(server, token, verify))
        except ApiFailure as failure:
            if failure.code == 401:
                raise CliError("The token provided is invalid or expired.") from None
            raise
        typer.echo(f'Logged into "{server}" as "{name}" using the token provided.\n')
    elif existing is not None:
        name, token = existing
        typer.echo(f'Logged into "{server}" as "{name}" using existing credentials.\n')
    else:
        interactive = sys.stdin.isatty()
        if username is None:
            if not interactive:
                raise CliError(
                    "you must give a user name (-u) and password (-p), or a token (--token)"
                )
            username = typer.prompt("Username")
        if password is None:
            if not interactive:
                raise CliError(f'a password is required for user "{username}" (-p)')
            password = typer.prompt("Password", hide_input=True)
        token = request_token(anonymous, username, password)
        name = whoami_name(Client(server, token, verify))
        typer.echo("Login successful.\n")

    client = Client(server, token, verify)
    projects = project_names(client)
    cluster_name = cluster_nickname(server)
    user_name = user_nickname(name, cluster_name)
    preferred = None
    if current is not None and current.server == server and current.user == user_name:
        preferred = current.namespace
    project = _choose_project(projects, preferred)
    _print_projects(projects, project)

    config.set_cluster(cluster_name, cluster)
    user_entry = dict(config.user(user_name) or {})
    user_entry["token"] = token
    config.set_user(user_name, user_entry)
    context_name = context_nickname(project, cluster_name, name)
    context: dict[str, Any] = {"cluster": cluster_name, "user": user_name}
    if project:
        context["namespace"] = project
    config.set_context(context_name, context)
    config.current_context = context_name
    config.save()


def logout(ctx: typer.Context) -> None:
    """End the current session: revoke its token on the server and forget it."""
    session = open_session(ctx)
    token = session.connection.token
    if not token:
        raise CliError("You must have a token in order to logout.")
    client = session.client
    name = whoami_name(client)
    try:
        client.delete(f"/apis/oauth.openshift.io/v1/useroauthaccesstokens/{stored_name(token)}")
    except ApiFailure as failure:
        if failure.code != 404:
            raise
    user = dict(session.config.user(session.connection.user) or {})
    user.pop("token", None)
    session.config.set_user(session.connection.user, user)
    session.config.save()
    typer.echo(f'Logged "{name}" out on "{session.connection.server}"')


def whoami(
    ctx: typer.Context,
    show_token: Annotated[
        bool, typer.Option("--show-token", "-t", help="Print the session's token")
    ] = False,
    show_server: Annotated[
        bool, typer.Option("--show-server", help="Print the server's URL")
    ] = False,
    show_context: Annotated[
        bool, typer.Option("--show-context", help="Print the current context's name")
    ] = False,
) -> None:
    """Print the name of the logged-in user (or its token, server, context)."""
    session = open_session(ctx)
    if show_token:
        if not session.connection.token:
            raise CliError("no token is currently in use for this session")
        typer.echo(session.connection.token)
    elif show_server:
        typer.echo(session.connection.server)
    elif show_context:
        typer.echo(session.connection.context)
    else:
        typer.echo(whoami_name(session.client))
