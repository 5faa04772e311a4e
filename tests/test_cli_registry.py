"""`wharf tag`, `wharf registry info`, `registry login` and `registry trust`, run as a user
runs them, against a real integrated server whose route has a public host of its own
(`localhost:<port>`) besides the internal one (`127.0.0.1:<port>`)."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import Cli, new_cli
from tests.support.clients import Clients
from tests.support.cluster import basic, bearer, registry_session
from tests.support.oci import Registry
from tests.support.server import WharfProcess, free_port, running_wharf
from wharf.cli import registry as registry_cli
from wharf.cli.main import app, run


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfProcess]:
    port = free_port()
    data = tmp_path_factory.mktemp("cli-registry") / "data"
    with running_wharf(
        data, "--public-host", f"localhost:{port}", port=port, integrated=True
    ) as process:
        yield process


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory, server: WharfProcess) -> Cli:
    cli = new_cli(tmp_path_factory.mktemp("admin"))
    cli.login_admin(server)
    return cli


def public(server: WharfProcess) -> str:
    return f"localhost:{server.port}"


def push(server: WharfProcess, cli: Cli, repository: str, tag: str) -> str:
    """Push a small image (over the registry's HTTP API) as `cli`'s user; its digest."""
    with registry_session(server, bearer(cli.token())) as session:
        return Registry(server.url, session).push_image(repository, tag).digest


@dataclass
class User:
    name: str
    cli: Cli


def new_user(server: WharfProcess, admin: Cli, base: Path) -> User:
    name, password = f"u-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin.ok("user", "add", name, "-p", password, "--data-dir", str(server.data_dir))
    cli = new_cli(base / name)
    cli.ok(
        "login",
        server.api_url,
        "--certificate-authority",
        str(server.ca_file),
        "-u",
        name,
        "-p",
        password,
    )
    return User(name, cli)


@pytest.fixture
def user(server: WharfProcess, admin: Cli, tmp_path: Path) -> User:
    return new_user(server, admin, tmp_path)


@pytest.fixture(scope="module")
def project(admin: Cli, server: WharfProcess) -> tuple[str, str]:
    """kubeadmin's project with app:latest pushed; (project, digest)."""
    name = f"p-{uuid.uuid4().hex[:8]}"
    admin.ok("new-project", name, "--skip-config-write")
    return name, push(server, admin, f"{name}/app", "latest")


def image_of(cli: Cli, namespace: str, istag: str) -> str:
    return cli.ok("-n", namespace, "get", "istag", istag, "-o", "jsonpath={.image.metadata.name}")


# wharf tag


def test_tag_points_a_new_tag_at_the_source_tags_image(
    admin: Cli, project: tuple[str, str]
) -> None:
    name, digest = project
    out = admin.ok("-n", name, "tag", "app:latest", "app:prod")
    assert out == f"Tag app:prod set to app@{digest}.\n"
    assert image_of(admin, name, "app:prod") == digest
    # As oc without --alias: the tag names the image, not the source tag.
    source = admin.ok(
        "-n",
        name,
        "get",
        "istag",
        "app:prod",
        "-o",
        "jsonpath={.tag.from.kind} {.tag.from.name} {.tag.from.namespace}",
    )
    assert source == f"ImageStreamImage app@{digest} {name}"


def test_tag_names_projects_unless_they_are_the_current_one(
    admin: Cli, project: tuple[str, str]
) -> None:
    name, digest = project
    out = admin.ok("-n", "default", "tag", f"{name}/app:latest", f"{name}/app:v2", f"{name}/copy")
    assert out == (
        f"Tag {name}/app:v2 set to {name}/app@{digest}.\n"
        f"Tag {name}/copy:latest set to {name}/app@{digest}.\n"
    )
    assert image_of(admin, name, "copy:latest") == digest  # a new stream, made by the tag
    assert image_of(admin, name, "app:v2") == digest


def test_tag_by_digest_and_retag(admin: Cli, server: WharfProcess) -> None:
    name = f"p-{uuid.uuid4().hex[:8]}"
    admin.ok("new-project", name, "--skip-config-write")
    first = push(server, admin, f"{name}/app", "latest")
    admin.ok("-n", name, "tag", "app:latest", "app:stable")
    second = push(server, admin, f"{name}/app", "latest")
    # The stable tag stays where it was set: it does not follow latest.
    assert image_of(admin, name, "app:stable") == first
    out = admin.ok("-n", name, "tag", "app:latest", "app:stable")  # an existing tag: updated
    assert out == f"Tag app:stable set to app@{second}.\n"
    assert image_of(admin, name, "app:stable") == second
    history = admin.ok(
        "-n",
        name,
        "get",
        "is",
        "app",
        "-o",
        'jsonpath={.status.tags[?(@.tag=="stable")].items[*].image}',
    )
    assert history.split() == [second, first]
    out = admin.ok("-n", name, "tag", f"app@{first}", "app:old")
    assert out == f"Tag app:old set to app@{first}.\n"
    assert image_of(admin, name, "app:old") == first


def test_tag_from_this_registrys_pull_spec(
    admin: Cli, project: tuple[str, str], server: WharfProcess
) -> None:
    name, digest = project
    for host in (public(server), server.host):
        out = admin.ok(
            "-n", name, "tag", "--source=docker", f"{host}/{name}/app@{digest}", "pulled:x"
        )
        assert out == f"Tag pulled:x set to {host}/{name}/app@{digest}.\n"
        assert image_of(admin, name, "pulled:x") == digest


def test_tag_of_an_outside_image_records_the_source_only(
    admin: Cli, project: tuple[str, str]
) -> None:
    name, digest = project
    spec = f"quay.example.com/org/app@{digest}"
    assert admin.ok("-n", name, "tag", spec, "outside:v1") == f"Tag outside:v1 set to {spec}.\n"
    got = admin.ok(
        "-n", name, "get", "istag", "outside:v1", "-o", "jsonpath={.tag.from.kind} {.image}"
    )
    # Nothing is imported: this registry does not pull from others, even for a digest it holds.
    assert got.strip() == "DockerImage"


def test_tag_delete(admin: Cli, project: tuple[str, str]) -> None:
    name, _ = project
    admin.ok("-n", name, "tag", "app:latest", "app:gone", "app:gone2")
    out = admin.ok("-n", "default", "tag", "-d", f"{name}/app:gone", f"{name}/app:gone2")
    assert out == f"Deleted tag {name}/app:gone.\nDeleted tag {name}/app:gone2.\n"
    err = admin.fails("-n", name, "get", "istag", "app:gone")
    assert "not found" in err
    err = admin.fails("-n", name, "tag", "-d", "app:gone")
    assert err == 'error: imagestreamtags.image.openshift.io "app:gone" not found\n'
    # The stream and its other tags stay.
    assert admin.ok("-n", name, "get", "istag", "app:latest", "-o", "name")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["app:latest"], "you must specify a source and at least one destination"),
        (["a/b/c:1", "app:x"], 'invalid image stream "a/b/c:1"'),
        (["--source=istag", "reg.io:5000/a/b:1", "app:x"], "pass --source=docker"),
        (["app:latest", "x/y/z"], 'invalid image stream "x/y/z"'),
        (["app:latest", "App:x"], "is not a valid image stream name"),
        (["app:latest", "app:-bad"], '"-bad" in "app:-bad" is not a valid tag'),
        (["--source=bogus", "app:latest", "app:x"], 'invalid source "bogus"'),
        (["--source=istag", "app@sha256:" + "0" * 64, "app:x"], "--source=istag requires"),
        (["--source=isimage", "app:latest", "app:x"], "--source=isimage requires"),
        (["app@sha256:abc", "app:x"], "does not end in a valid digest"),
        (["-d", "--source=istag", "app:x"], "cannot be used with --delete"),
        (["-d", "app"], "must be of the form [project/]stream:tag"),
        (["app:nothing", "app:x"], '"app:nothing" is not currently pointing to an image'),
        (["missing:latest", "app:x"], 'imagestreams.image.openshift.io "missing" not found'),
    ],
)
def test_tag_refuses(admin: Cli, project: tuple[str, str], args: list[str], message: str) -> None:
    name, _ = project
    assert message in admin.fails("-n", name, "tag", *args)


def test_tag_needs_rights_in_both_projects(
    admin: Cli, user: User, project: tuple[str, str]
) -> None:
    name, digest = project
    own = f"own-{uuid.uuid4().hex[:8]}"
    user.cli.ok("new-project", own)
    # Neither reading the source project nor writing tags into it without a role there.
    err = user.cli.fails("tag", f"{name}/app:latest", "mine:x")
    assert (
        f'cannot get resource "imagestreams" in API group "image.openshift.io" in the '
        f'namespace "{name}"' in err
    )
    err = user.cli.fails("tag", "quay.example.com/a/b:1", f"{name}/app:x")
    assert "forbidden" in err
    # Viewers may copy from a project into their own, but not tag inside it.
    admin.ok("policy", "add-role-to-user", "view", user.name, "-n", name)
    out = user.cli.ok("tag", f"{name}/app:latest", "mine:x")
    assert out == f"Tag mine:x set to {name}/app@{digest}.\n"
    assert image_of(user.cli, own, "mine:x") == digest
    err = user.cli.fails("tag", f"{name}/app:latest", f"{name}/app:theirs")
    assert 'cannot update resource "imagestreamtags"' in err or "forbidden" in err


def test_a_digest_alone_does_not_copy_an_image_out_of_another_project(
    user: User, project: tuple[str, str], server: WharfProcess
) -> None:
    """Naming a stream of one's own, or another registry, with the digest of an image that
    lives only in a project one may not read must not make it pullable in one's project."""
    _, digest = project
    own = f"own-{uuid.uuid4().hex[:8]}"
    user.cli.ok("new-project", own)
    err = user.cli.fails("tag", f"anything@{digest}", "stolen:a")
    assert err == (f'error: imagestreamimages.image.openshift.io "anything@{digest}" not found\n')
    user.cli.ok("tag", "--source=docker", f"elsewhere.example.com/x/y@{digest}", "stolen:b")
    assert image_of(user.cli, own, "stolen:b") == ""
    with registry_session(server, bearer(user.cli.token())) as session:
        got = session.get(f"{server.url}/v2/{own}/stolen/manifests/{digest}", timeout=30)
    assert got.status_code == 404


# wharf registry info


def test_info_from_image_streams(
    admin: Cli, project: tuple[str, str], server: WharfProcess
) -> None:
    name, _ = project
    out = admin.ok("-n", name, "registry", "info")
    assert out == f"Public:   {public(server)}\nInternal: {server.host}\n"
    assert admin.ok("-n", name, "registry", "info", "--public") == f"{public(server)}\n"
    assert admin.ok("-n", name, "registry", "info", "--internal") == f"{server.host}\n"
    assert admin.ok("-n", name, "registry", "info", "--check", "--public") == (
        f"{public(server)}\n"
    )
    err = admin.fails("registry", "info", "--public", "--internal")
    assert err == "error: only one of --internal or --public may be specified at a time\n"


def test_info_without_image_streams(user: User, server: WharfProcess) -> None:
    # No project: the public host from the registry's route, which every user may read.
    out = user.cli.ok("registry", "info")
    assert out == f"Public:   {public(server)}\n"
    err = user.cli.fails("registry", "info", "--internal")
    assert err == "error: registry does not have an internal hostname\n"
    # In a project of their own without streams: what a new stream there would report.
    user.cli.ok("new-project", f"empty-{uuid.uuid4().hex[:8]}")
    out = user.cli.ok("registry", "info")
    assert out == f"Public:   {public(server)}\nInternal: {server.host}\n"
    assert user.cli.ok("get", "is", "-o", "name") == ""  # the dry run made nothing


def test_info_needs_a_login(tmp_path: Path) -> None:
    assert "Missing or incomplete configuration" in new_cli(tmp_path).fails("registry", "info")


# wharf registry login


def decoded(auth_file: Path, host: str) -> str:
    auths = json.loads(auth_file.read_text())["auths"]
    return base64.b64decode(auths[host]["auth"]).decode()


def test_login_writes_an_auth_file_entry_for_the_public_host(
    admin: Cli, project: tuple[str, str], server: WharfProcess, tmp_path: Path
) -> None:
    name, _ = project
    auth_file = tmp_path / "new" / "auth.json"
    result = admin.run("-n", name, "registry", "login", "--to", str(auth_file))
    assert result.code == 0, result
    assert result.out == f"Saved credentials for {public(server)} in {auth_file}\n"
    assert result.err == f"info: Using registry public hostname {public(server)}\n"
    assert decoded(auth_file, public(server)) == f"user:{admin.token()}"
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600
    # The credentials are what the registry takes.
    user, password = decoded(auth_file, public(server)).split(":", 1)
    with registry_session(server, basic(user, password)) as session:
        assert session.get(f"{server.url}/v2/{name}/app/tags/list", timeout=30).json()["tags"]


def test_login_keeps_the_other_entries(admin: Cli, server: WharfProcess, tmp_path: Path) -> None:
    auth_file = tmp_path / "auth.json"
    other = {"auth": base64.b64encode(b"me:secret").decode()}
    auth_file.write_text(json.dumps({"auths": {"quay.io": other}, "credHelpers": {"x": "y"}}))
    admin.ok("registry", "login", "--to", str(auth_file), "--registry", server.host)
    written = json.loads(auth_file.read_text())
    assert written["auths"]["quay.io"] == other
    assert written["credHelpers"] == {"x": "y"}
    assert decoded(auth_file, server.host) == f"user:{admin.token()}"


def test_login_default_auth_file(admin: Cli, server: WharfProcess, tmp_path: Path) -> None:
    """As podman: $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json, else
    ~/.config/containers/auth.json."""
    explicit, runtime, home = tmp_path / "explicit.json", tmp_path / "run", tmp_path / "home"
    cases = [
        ({"REGISTRY_AUTH_FILE": str(explicit), "XDG_RUNTIME_DIR": str(runtime)}, explicit),
        (
            {"REGISTRY_AUTH_FILE": "", "XDG_RUNTIME_DIR": str(runtime)},
            runtime / "containers" / "auth.json",
        ),
        (
            {"REGISTRY_AUTH_FILE": "", "XDG_RUNTIME_DIR": "", "HOME": str(home)},
            home / ".config" / "containers" / "auth.json",
        ),
    ]
    for env, expected in cases:
        cli = Cli(admin.kubeconfig, admin.cwd, env)
        out = cli.ok("registry", "login", "--skip-check")
        assert out == f"Saved credentials for {public(server)} in {expected}\n"
        assert decoded(expected, public(server)) == f"user:{admin.token()}"


def test_login_to_stdout(admin: Cli, server: WharfProcess) -> None:
    out = admin.ok("registry", "login", "--to", "-")
    auths = json.loads(out)["auths"]
    assert base64.b64decode(auths[public(server)]["auth"]).decode() == f"user:{admin.token()}"


def test_login_as_a_service_account(
    admin: Cli, project: tuple[str, str], server: WharfProcess
) -> None:
    name, _ = project
    out = admin.ok("-n", name, "registry", "login", "-z", "builder", "--to", "-")
    entry = json.loads(out)["auths"][public(server)]["auth"]
    user, token = base64.b64decode(entry).decode().split(":", 1)
    assert user == f"system-serviceaccount-{name}-builder"
    with registry_session(server, basic(user, token)) as session:
        assert session.get(f"{server.url}/v2/", timeout=30).status_code == 200
    err = admin.fails("-n", name, "registry", "login", "-z", "nobody", "--to", "-")
    assert err == f"error: the service account nobody does not exist in namespace {name}\n"


def test_login_refusals(admin: Cli, server: WharfProcess, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    err = admin.fails("registry", "login", "--to", str(broken), "--registry", public(server))
    assert err.startswith(f"error: unable to parse existing credentials {broken}")
    assert broken.read_text() == "{not json"
    # A registry that does not take the credentials.
    err = admin.fails(
        "registry",
        "login",
        "--to",
        str(tmp_path / "x.json"),
        "--registry",
        f"127.0.0.1:{free_port()}",
    )
    assert "registry could not be contacted at 127.0.0.1:" in err
    assert not (tmp_path / "x.json").exists()


def test_login_without_a_token(server: WharfProcess, admin: Cli, tmp_path: Path) -> None:
    someone = new_user(server, admin, tmp_path)
    someone.cli.ok("logout")
    err = someone.cli.fails("registry", "login", "--to", "-")
    assert err == "error: no token is currently in use for this session\n"


# wharf registry trust


def test_trust_installs_the_kubeconfig_ca_for_both_hosts(
    admin: Cli, project: tuple[str, str], server: WharfProcess, tmp_path: Path
) -> None:
    name, _ = project
    certs = tmp_path / "certs.d"
    out = admin.ok("-n", name, "registry", "trust", "--certs-dir", str(certs))
    expected = [certs / public(server) / "ca.crt", certs / server.host / "ca.crt"]
    assert out == (
        f"Wrote the CA for {public(server)} to {expected[0]}\n"
        f"Wrote the CA for {server.host} to {expected[1]}\n"
    )
    for path in expected:
        assert path.read_bytes() == server.ca_file.read_bytes()
        assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_trust_from_a_data_directory_needs_no_login(server: WharfProcess, tmp_path: Path) -> None:
    cli = new_cli(tmp_path / "nobody")
    certs = tmp_path / "certs.d"
    out = cli.ok(
        "registry",
        "trust",
        "--data-dir",
        str(server.data_dir),
        "--registry",
        "reg.test:5000",
        "--certs-dir",
        str(certs),
    )
    assert out == f"Wrote the CA for reg.test:5000 to {certs / 'reg.test:5000' / 'ca.crt'}\n"
    assert (certs / "reg.test:5000" / "ca.crt").read_bytes() == server.ca_file.read_bytes()


def test_trust_refusals(server: WharfProcess, admin: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    err = admin.fails("registry", "trust", "--certs-dir", str(blocker))
    assert err.startswith(f"error: cannot write {blocker}/")
    err = new_cli(tmp_path / "nobody").fails("registry", "trust", "--registry", "x:1")
    assert "not logged in" in err
    err = admin.fails("registry", "trust", "--data-dir", str(tmp_path), "--registry", "x:1")
    assert err.startswith(f"error: cannot read the CA of data directory {tmp_path}")
    # A login that trusts nothing in particular has no CA to install.
    insecure = new_cli(tmp_path / "insecure")
    insecure.ok(
        "login",
        server.api_url,
        "--insecure-skip-tls-verify",
        "-u",
        "kubeadmin",
        "-p",
        server.kubeadmin_password,
    )
    err = insecure.fails("registry", "trust", "--certs-dir", str(tmp_path / "c"))
    assert "has no certificate authority: give the server's data directory" in err


def test_trust_without_a_login_says_exactly_what_to_pass(
    server: WharfProcess, tmp_path: Path
) -> None:
    """As under sudo, which drops $KUBECONFIG and changes $HOME: no login to take the CA and
    the hosts from. The error names the flags, with the data directory found here."""
    cli = new_cli(tmp_path / "nobody")
    (cli.cwd / "wharf-data").symlink_to(server.data_dir)
    err = cli.fails("registry", "trust")
    data = cli.cwd / "wharf-data"
    assert err.startswith("error: not logged in"), err
    assert f"registry trust --data-dir {data} --registry HOST:PORT" in err, err
    assert "127.0.0.1:5000" in err
    # Half of it: the host is still missing.
    err = cli.fails("registry", "trust", "--data-dir", str(data))
    assert "--registry HOST:PORT" in err and "--data-dir" not in err.split("pass")[-1], err
    # What it said to pass works.
    certs = tmp_path / "certs.d"
    cli.ok(
        "registry",
        "trust",
        "--data-dir",
        str(data),
        "--registry",
        server.host,
        "--certs-dir",
        str(certs),
    )
    assert (certs / server.host / "ca.crt").read_bytes() == server.ca_file.read_bytes()


def test_trust_under_sudo_reads_the_invoking_users_login(
    admin: Cli,
    project: tuple[str, str],
    server: WharfProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`sudo wharf registry trust` as root: $HOME is root's and $KUBECONFIG is gone, so the
    login is taken from the kubeconfig of $SUDO_USER (here a stand-in user whose home is a
    temporary directory holding kubeadmin's kubeconfig)."""
    name, _ = project
    home = tmp_path / "home" / "alice"
    (home / ".kube").mkdir(parents=True)
    config = admin.config()
    for context in config["contexts"]:
        context["context"]["namespace"] = name
    (home / ".kube" / "config").write_text(json.dumps(config))
    monkeypatch.setenv("HOME", str(tmp_path / "root-home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("SUDO_USER", "alice")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(registry_cli, "home_of", lambda user: home if user == "alice" else None)
    certs = tmp_path / "certs.d"
    assert run(app, ["registry", "trust", "--certs-dir", str(certs)]) == 0, capsys.readouterr()
    for host in (public(server), server.host):
        assert (certs / host / "ca.crt").read_bytes() == server.ca_file.read_bytes()
    # Not under sudo: no stand-in, and so no login.
    monkeypatch.delenv("SUDO_USER")
    assert run(app, ["registry", "trust", "--certs-dir", str(certs)]) == 1
    assert "not logged in" in capsys.readouterr().err


@pytest.mark.clients
def test_podman_and_skopeo_use_what_login_and_trust_wrote(
    admin: Cli, project: tuple[str, str], server: WharfProcess, tmp_path: Path
) -> None:
    """No --tls-verify=false and no `podman login`: the CA and the credentials are found
    where the verbs put them."""
    name, digest = project
    clients = Clients(tmp_path / "clients")
    try:
        certs = tmp_path / "certs.d"
        cli = Cli(
            admin.kubeconfig, admin.cwd, {"REGISTRY_AUTH_FILE": clients.env["REGISTRY_AUTH_FILE"]}
        )
        cli.ok("-n", name, "registry", "login")
        cli.ok("-n", name, "registry", "trust", "--certs-dir", str(certs))
        host = public(server)
        storage = clients.storage()
        got = clients.podman(storage, "login", "--get-login", host)
        assert got.stdout.strip() == "user"
        inspected = clients.skopeo(
            "inspect", "--cert-dir", str(certs / host), f"docker://{host}/{name}/app:latest"
        ).json()
        assert inspected["Digest"] == digest
        # Without the CA, the registry's certificate is refused.
        refused = clients.skopeo("inspect", f"docker://{host}/{name}/app:latest", check=False)
        assert not refused.ok
        assert "certificate" in refused.stderr, refused.stderr
    finally:
        clients.close()


def test_help_lists_the_verbs(admin: Cli) -> None:
    text = admin.ok("registry", "--help")
    for verb in ("info", "login", "trust"):
        assert verb in text
    assert "SOURCE DEST..." in admin.ok("tag", "--help")


def test_describe_imagestream_reads_like_oc(admin: Cli, server: WharfProcess) -> None:
    """`oc describe is`: the stream's facts, then each tag with where it was tagged from and
    its history, newest first, the current image starred, each with its age."""
    name = f"p-{uuid.uuid4().hex[:8]}"
    admin.ok("new-project", name, "--skip-config-write")
    old = push(server, admin, f"{name}/app", "latest")
    new = push(server, admin, f"{name}/app", "latest")
    admin.ok("-n", name, "tag", "app:latest", "app:prod")
    admin.ok("-n", name, "tag", "--source=docker", "quay.io/x/y:1", "app:ext")
    text = admin.ok("-n", name, "describe", "is", "app")

    ago = r"(Less than a second|1 second|\d+ seconds|About a minute) ago"
    internal = f"{server.host}/{name}/app"
    expected = "\n".join(
        [
            "Name:                   app",
            f"Namespace:              {name}",
            f"Created:                {ago}",
            "Labels:                 <none>",
            "Annotations:            <none>",
            re.escape(f"Image Repository:       {public(server)}/{name}/app"),
            "Image Lookup:           local=false",
            "Unique Images:          2",
            "Tags:                   3",
            "",
            "latest",
            "  no spec tag",
            "",
            re.escape(f"  * {internal}@{new}"),
            f"      {ago}",
            re.escape(f"    {internal}@{old}"),
            f"      {ago}",
            "",
            "ext",
            re.escape("  tagged from quay.io/x/y:1"),
            "",
            "prod",
            re.escape(f"  tagged from app@{new}"),
            "",
            re.escape(f"  * {internal}@{new}"),
            f"      {ago}",
            "",
        ]
    )
    assert re.fullmatch(expected, text), text
