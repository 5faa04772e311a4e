"""`wharf login`, `logout`, `whoami` and `user add`: the oc-style login flow, the kubeconfig it
writes (which the real kubectl then uses), trust, and failures."""

from __future__ import annotations

import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.cli import Cli, ca_data, entry, kubectl, new_cli
from tests.support.cluster import kubectl_version
from tests.support.server import WharfProcess, free_port, running_wharf


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfProcess]:
    with running_wharf(tmp_path_factory.mktemp("cli-login") / "data", integrated=True) as process:
        yield process


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return new_cli(tmp_path / "cli")


def nickname(server: WharfProcess) -> str:
    return f"127-0-0-1:{server.api_port}"


def add_user(cli: Cli, server: WharfProcess) -> tuple[str, str]:
    name, password = f"user-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    out = cli.ok("user", "add", name, "--password", password, "--data-dir", str(server.data_dir))
    assert f'User "{name}" added' in out
    return name, password


def test_login_with_password_writes_an_oc_style_context(cli: Cli, server: WharfProcess) -> None:
    out = cli.login_admin(server)
    assert out.startswith("Login successful.\n")
    assert "You have access to the following projects" in out
    assert "  * default\n" in out
    assert "    openshift-image-registry\n" in out
    assert out.rstrip().endswith('Using project "default".')

    config = cli.config()
    cluster = nickname(server)
    assert config["current-context"] == f"default/{cluster}/kubeadmin"
    assert entry(config, "clusters", cluster) == {
        "server": server.api_url,
        "certificate-authority-data": ca_data(server),
    }
    context = entry(config, "contexts", f"default/{cluster}/kubeadmin")
    assert context == {"cluster": cluster, "namespace": "default", "user": f"kubeadmin/{cluster}"}
    token = entry(config, "users", f"kubeadmin/{cluster}")["token"]
    assert token.startswith("sha256~")
    assert stat.S_IMODE(cli.kubeconfig.stat().st_mode) == 0o600


def test_kubectl_works_right_after_login(cli: Cli, server: WharfProcess) -> None:
    cli.login_admin(server)
    env = cli.environment()
    done = subprocess.run(
        [kubectl(), "get", "namespaces"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split() == ["NAME", "STATUS", "AGE"]
    names = {line.split()[0] for line in done.stdout.splitlines()[1:]}
    assert {"default", "openshift", "openshift-image-registry"} <= names
    if kubectl_version() < (1, 28):
        return  # `kubectl auth whoami` came with 1.28 (Debian 12 ships 1.20)
    whoami = subprocess.run(
        [kubectl(), "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert whoami.returncode == 0, whoami.stderr
    assert whoami.stdout == "kubeadmin"


def test_whoami(cli: Cli, server: WharfProcess) -> None:
    cli.login_admin(server)
    assert cli.ok("whoami") == "kubeadmin\n"
    token = entry(cli.config(), "users", f"kubeadmin/{nickname(server)}")["token"]
    assert cli.ok("whoami", "-t") == f"{token}\n"
    assert cli.ok("whoami", "--show-server") == f"{server.api_url}\n"
    assert cli.ok("whoami", "--show-context") == f"default/{nickname(server)}/kubeadmin\n"


def test_login_trusts_the_ca_of_a_local_data_directory(
    tmp_path: Path, server: WharfProcess
) -> None:
    cli = new_cli(tmp_path / "elsewhere")
    args = ["login", server.api_url, "-u", "kubeadmin", "-p", server.kubeadmin_password]
    # Nothing trusts Wharf's CA: the system's store does not hold it, ./wharf-data is missing.
    err = cli.fails(*args)
    assert "certificate signed by an unknown authority" in err
    assert not cli.kubeconfig.exists()

    cli.ok(*args, "--data-dir", str(server.data_dir))
    assert entry(cli.config(), "clusters", nickname(server))["certificate-authority-data"] == (
        ca_data(server)
    )

    # The default data directory is ./wharf-data, as for `wharf serve`.
    local = new_cli(tmp_path / "next-to-the-server")
    (local.cwd / "wharf-data").symlink_to(server.data_dir)
    local.ok(*args)
    assert local.ok("whoami") == "kubeadmin\n"


def test_login_insecure_skip_tls_verify(cli: Cli, server: WharfProcess) -> None:
    cli.ok(
        "login",
        server.api_url,
        "--insecure-skip-tls-verify",
        "-u",
        "kubeadmin",
        "-p",
        server.kubeadmin_password,
    )
    assert entry(cli.config(), "clusters", nickname(server)) == {
        "server": server.api_url,
        "insecure-skip-tls-verify": True,
    }
    assert cli.ok("whoami") == "kubeadmin\n"


def test_login_takes_the_server_without_scheme_and_from_the_current_context(
    cli: Cli, server: WharfProcess
) -> None:
    cli.ok(
        "login",
        f"127.0.0.1:{server.api_port}",
        "--certificate-authority",
        str(server.ca_file),
        "-u",
        "kubeadmin",
        "-p",
        server.kubeadmin_password,
    )
    assert cli.ok("whoami", "--show-server") == f"{server.api_url}\n"
    name, password = add_user(cli, server)
    out = cli.ok("login", "-u", name, "-p", password)
    assert out.startswith("Login successful.\n")
    assert "You don't have any projects." in out
    assert cli.ok("whoami") == f"{name}\n"
    # No project yet: the context has no namespace, and is named like oc's: /cluster/user.
    assert cli.config()["current-context"] == f"/{nickname(server)}/{name}"
    # Logging in again with a still valid token needs no credentials.
    again = cli.ok("login")
    assert again.startswith(f'Logged into "{server.api_url}" as "{name}" using existing')


def test_login_with_a_token(cli: Cli, tmp_path: Path, server: WharfProcess) -> None:
    cli.login_admin(server)
    token = cli.token()
    other = new_cli(tmp_path / "other")
    out = other.ok(
        "login", server.api_url, "--token", token, "--certificate-authority", str(server.ca_file)
    )
    assert out.startswith(f'Logged into "{server.api_url}" as "kubeadmin" using the token')
    assert other.token() == token
    err = other.fails("login", "--token", "sha256~not-a-token")
    assert err == "error: The token provided is invalid or expired.\n"


def test_login_with_a_wrong_password(cli: Cli, server: WharfProcess) -> None:
    err = cli.fails(
        "login",
        server.api_url,
        "--certificate-authority",
        str(server.ca_file),
        "-u",
        "kubeadmin",
        "-p",
        "wrong",
    )
    assert err.startswith("error: Login failed (401 Unauthorized)")
    assert not cli.kubeconfig.exists()
    err = cli.fails(
        "login",
        server.api_url,
        "--certificate-authority",
        str(server.ca_file),
        "-u",
        "nobody-at-all",
        "-p",
        "x",
    )
    assert err.startswith("error: Login failed (401 Unauthorized)")


def test_login_needs_credentials_without_a_terminal(cli: Cli, server: WharfProcess) -> None:
    args = ["login", server.api_url, "--certificate-authority", str(server.ca_file)]
    assert "user name (-u)" in cli.fails(*args)
    assert "password is required" in cli.fails(*args, "-u", "kubeadmin")
    assert "cannot read certificate authority" in cli.fails(
        "login", server.api_url, "--certificate-authority", "/nonexistent/ca.crt"
    )


def test_logout_revokes_the_token(cli: Cli, server: WharfProcess) -> None:
    cli.login_admin(server)
    token = cli.token()
    me = f"{server.api_url}/apis/user.openshift.io/v1/users/~"
    headers = {"Authorization": f"Bearer {token}"}
    ca = str(server.ca_file)
    assert requests.get(me, headers=headers, verify=ca, timeout=30).status_code == 200

    assert cli.ok("logout") == f'Logged "kubeadmin" out on "{server.api_url}"\n'
    assert requests.get(me, headers=headers, verify=ca, timeout=30).status_code == 401
    assert entry(cli.config(), "users", f"kubeadmin/{nickname(server)}") == {}
    assert cli.fails("whoami") == "error: You must be logged in to the server (Unauthorized)\n"
    assert cli.fails("logout") == "error: You must have a token in order to logout.\n"


def test_user_add_then_log_in(cli: Cli, server: WharfProcess) -> None:
    data = str(server.data_dir)
    name, password = add_user(cli, server)
    args = ["login", server.api_url, "--certificate-authority", str(server.ca_file)]
    cli.ok(*args, "-u", name, "-p", password)
    assert cli.ok("whoami") == f"{name}\n"

    # A new password, from stdin, through the `htpasswd` alias.
    out = cli.ok("htpasswd", name, "--password-stdin", "--data-dir", data, input="n3w\n")
    assert f'Password of user "{name}" changed' in out
    cli.fails(*args, "-u", name, "-p", password)
    cli.ok(*args, "-u", name, "-p", "n3w")
    assert name in cli.ok("user", "list", "--data-dir", data).split()

    cli.ok("user", "remove", name, "--data-dir", data)
    assert name not in cli.ok("user", "list", "--data-dir", data).split()
    assert "not found" in cli.fails("user", "remove", name, "--data-dir", data)
    assert "invalid user name" in cli.fails("user", "add", "a:b", "-p", "x", "--data-dir", data)
    assert "password is required" in cli.fails("user", "add", "someone", "--data-dir", data)
    assert "does not exist" in cli.fails("user", "add", "x", "-p", "y", "--data-dir", "/nowhere")
    assert "may not be empty" in cli.fails(
        "user", "add", "someone", "--password-stdin", "--data-dir", data, input="\n"
    )


def test_kubeconfig_option_beats_the_environment(
    cli: Cli, tmp_path: Path, server: WharfProcess
) -> None:
    chosen = tmp_path / "chosen.yaml"
    cli.ok(
        "--kubeconfig",
        str(chosen),
        "login",
        server.api_url,
        "--certificate-authority",
        str(server.ca_file),
        "-u",
        "kubeadmin",
        "-p",
        server.kubeadmin_password,
    )
    assert chosen.exists()
    assert not cli.kubeconfig.exists()
    assert cli.ok("--kubeconfig", str(chosen), "whoami") == "kubeadmin\n"
    assert "Missing or incomplete configuration" in cli.fails("whoami")


def test_server_down(cli: Cli, tmp_path: Path, server: WharfProcess) -> None:
    port = free_port()
    err = cli.fails(
        "login", f"https://127.0.0.1:{port}", "--insecure-skip-tls-verify", "-u", "a", "-p", "b"
    )
    assert err.startswith(f"error: The connection to the server 127.0.0.1:{port} was refused")

    # A kubeconfig whose server has gone away.
    cli.login_admin(server)
    text = cli.kubeconfig.read_text().replace(f":{server.api_port}", f":{port}")
    cli.kubeconfig.write_text(text)
    err = cli.fails("get", "namespaces")
    assert f"The connection to the server 127.0.0.1:{port} was refused" in err


def test_not_logged_in(cli: Cli) -> None:
    for verb in (["whoami"], ["get", "ns"], ["projects"], ["new-project", "x"]):
        assert "Missing or incomplete configuration info" in cli.fails(*verb)


CHECKS = "Check that `wharf serve` is running and that the URL is its API's"


def test_login_to_a_wrong_url_says_what_to_check(
    cli: Cli, tmp_path: Path, server: WharfProcess
) -> None:
    """Every wrong URL a newcomer types fails as `error: ...` with what to check: no Python
    exception text, no bare status."""
    ca = ("--certificate-authority", str(server.ca_file), "-u", "a", "-p", "b")
    # The registry's port: TLS with the same CA, but not the API.
    err = cli.fails("login", f"https://{server.host}", *ca)
    assert err.startswith(f"error: https://{server.host} is not a Wharf API: GET /version "), err
    assert "404" in err and CHECKS in err and "https://127.0.0.1:8443" in err
    # The API's port with a path after it.
    err = cli.fails("login", f"{server.api_url}/console", *ca)
    assert err.startswith(f"error: {server.api_url}/console is not a Wharf API"), err
    # Plain HTTP to the TLS port.
    err = cli.fails("login", f"http://127.0.0.1:{server.api_port}", "-u", "a", "-p", "b")
    assert f"use https://127.0.0.1:{server.api_port}" in err, err
    # Nothing listening.
    port = free_port()
    err = cli.fails("login", f"https://127.0.0.1:{port}", *ca)
    assert err.startswith(f"error: The connection to the server 127.0.0.1:{port} was refused")
    assert CHECKS in err
    # No such host.
    err = cli.fails("login", "https://wharf.invalid:8443", *ca)
    assert err.startswith("error: unable to connect to the server wharf.invalid:8443: "), err
    assert CHECKS in err
    # URLs that are no URLs.
    for url in ("https://[::1", "https://127.0.0.1:99999", "https://127.0.0.1:8443:1", "ftp://x"):
        err = cli.fails("login", url, "-u", "a", "-p", "b")
        assert err.startswith(f"error: invalid server URL '{url}'"), err
    for err in (
        cli.fails("login", f"https://{server.host}", *ca),
        cli.fails("login", f"http://127.0.0.1:{server.api_port}", "-u", "a", "-p", "b"),
    ):
        assert "Error(" not in err and "Connection(" not in err and "ValueError" not in err
    assert not cli.kubeconfig.exists()
