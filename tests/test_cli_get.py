"""`wharf get`, `describe`, `create -f`, `apply -f` and `delete`, run as a user would."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import Cli, kubectl, manifest, new_cli
from tests.support.server import WharfProcess, running_wharf

ROUTE_GROUP = "route.openshift.io"
RBAC = "rbac.authorization.k8s.io"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfProcess]:
    with running_wharf(tmp_path_factory.mktemp("cli-get") / "data", integrated=True) as w:
        yield w


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory, server: WharfProcess) -> Cli:
    cli = new_cli(tmp_path_factory.mktemp("admin"))
    cli.login_admin(server)
    return cli


@pytest.fixture
def cli(admin: Cli) -> Iterator[Cli]:
    """kubeadmin, working in a project of this test's own (the current one)."""
    project = f"p-{uuid.uuid4().hex[:8]}"
    admin.ok("new-project", project)
    yield admin
    admin.ok("project", "default")


def current(cli: Cli) -> str:
    return cli.ok("project", "-q").strip()


def route(name: str, host: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{ROUTE_GROUP}/v1",
        "kind": "Route",
        "metadata": {"name": name, **({"labels": labels} if labels else {})},
        "spec": {"host": host, "to": {"kind": "Service", "name": "web"}},
    }


def account(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, **({"labels": labels} if labels else {})},
    }


def rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.splitlines()]


def test_the_registry_route_host_by_jsonpath(admin: Cli) -> None:
    # The seed workflow: podman login ... $(wharf -n openshift-image-registry get route
    # default-route -o jsonpath='{.spec.host}')
    out = admin.ok(
        "-n",
        "openshift-image-registry",
        "get",
        "route",
        "default-route",
        "-o",
        "jsonpath={.spec.host}",
    )
    obj = json.loads(
        admin.ok("get", "route", "default-route", "-n", "openshift-image-registry", "-o", "json")
    )
    assert out == obj["spec"]["host"]
    assert out and out.strip() == out and "\n" not in out


@pytest.mark.parametrize(
    "spelling",
    ["ns", "namespace", "namespaces", "Namespace", "namespaces.v1", "NS"],
)
def test_type_names(admin: Cli, spelling: str) -> None:
    table = rows(admin.ok("get", spelling))
    assert table[0] == ["NAME", "STATUS", "AGE"]
    assert table[1][:2] == ["default", "Active"]


def test_type_names_of_groups_and_short_names(cli: Cli) -> None:
    project = current(cli)
    expected = cli.ok("get", "serviceaccounts")
    for spelling in ("sa", "serviceaccount", "ServiceAccount"):
        assert cli.ok("get", spelling).split("\n")[0] == expected.split("\n")[0]
    bindings = cli.ok("get", "rolebindings")
    assert rows(bindings)[0] == ["NAME", "ROLE", "AGE"]
    for spelling in ("rolebinding", "rolebindings.rbac.authorization.k8s.io", "rolebindings.rbac"):
        assert [r[:2] for r in rows(cli.ok("get", spelling))] == [r[:2] for r in rows(bindings)]
    assert project in cli.ok("get", "projects.project.openshift.io", "-o", "name")
    assert "user.openshift.io/kubeadmin" in cli.ok("get", "users", "-o", "name")
    assert f"project.project.openshift.io/{project}" in cli.ok(
        "get", "project", project, "-o", "name"
    )


def test_image_kinds_are_found_through_discovery(cli: Cli) -> None:
    for spelling in ("is", "imagestreams", "imagestream.image.openshift.io", "istag", "images"):
        result = cli.run("get", spelling)
        assert result.code == 0, str(result)
        assert result.err.startswith("No resources found"), str(result)


def test_unknown_type(admin: Cli) -> None:
    assert admin.fails("get", "widgets") == (
        'error: the server doesn\'t have a resource type "widgets"\n'
    )
    assert "resource type" in admin.fails("get", "namespaces.nosuch.group")
    assert "resource type" in admin.fails("describe", "widgets", "x")
    assert "resource type" in admin.fails("delete", "widgets", "x")


def test_tables_wide_all_namespaces_and_labels(cli: Cli) -> None:
    project = current(cli)
    cli.ok(
        "create",
        "-f",
        "-",
        input=manifest(
            route("web", "web.example.com", app="web"),
            route("api", "api.example.com", app="api"),
        ),
    )
    table = rows(cli.ok("get", "routes"))
    assert table[0] == ["NAME", "HOST/PORT", "PATH", "SERVICES", "TERMINATION", "AGE"]
    assert [r[:3] for r in table[1:]] == [
        ["api", "api.example.com", "web"],
        ["web", "web.example.com", "web"],
    ]
    assert rows(cli.ok("get", "routes", "-o", "wide"))[0][0] == "NAME"

    everywhere = rows(cli.ok("get", "routes", "-A"))
    assert everywhere[0][:2] == ["NAMESPACE", "NAME"]
    assert [project, "web", "web.example.com"] in [r[:3] for r in everywhere]
    assert ["openshift-image-registry", "default-route"] in [r[:2] for r in everywhere]

    selected = rows(cli.ok("get", "routes", "-l", "app=web", "--show-labels"))
    assert selected[0][-1] == "LABELS"
    assert [r[0] for r in selected[1:]] == ["web"]
    assert selected[1][-1] == "app=web"
    assert rows(cli.ok("get", "routes", "--no-headers"))[0][0] == "api"
    assert [r[0] for r in rows(cli.ok("get", "route", "web", "api"))] == ["NAME", "web", "api"]

    empty = cli.run("get", "routes", "-l", "app=none")
    assert (empty.code, empty.out) == (0, "")
    assert empty.err == f"No resources found in {project} namespace.\n"
    assert cli.run("get", "routes", "-A", "-l", "app=none").err == "No resources found.\n"


def test_output_formats(cli: Cli) -> None:
    project = current(cli)
    cli.ok("create", "-f", "-", input=manifest(account("robot", team="a"), account("droid")))

    one = json.loads(cli.ok("get", "sa", "robot", "-o", "json"))
    assert (one["kind"], one["metadata"]["name"], one["metadata"]["namespace"]) == (
        "ServiceAccount",
        "robot",
        project,
    )
    listed = json.loads(cli.ok("get", "sa", "-o", "json"))
    assert listed["kind"] == "List"
    assert {i["metadata"]["name"] for i in listed["items"]} >= {"robot", "droid", "builder"}
    assert all(i["kind"] == "ServiceAccount" for i in listed["items"])
    assert yaml.safe_load(cli.ok("get", "sa", "robot", "-o", "yaml")) == one
    assert cli.ok("get", "sa/robot", "sa/droid", "-o", "name") == (
        "serviceaccount/robot\nserviceaccount/droid\n"
    )

    assert cli.ok("get", "sa", "robot", "-o", "jsonpath={.metadata.labels.team}") == "a"
    names = cli.ok("get", "sa", "-o", "jsonpath={.items[*].metadata.name}").split()
    assert names == sorted(names) and {"robot", "droid"} <= set(names)
    ranged = cli.ok(
        "get",
        "sa",
        "-l",
        "team=a",
        "-o",
        'jsonpath={range .items[*]}{.metadata.name}{"\\t"}{.metadata.namespace}{"\\n"}{end}',
    )
    assert ranged == f"robot\t{project}\n"
    filtered = cli.ok(
        "get", "sa", "-o", 'jsonpath={.items[?(@.metadata.name=="droid")].metadata.name}'
    )
    assert filtered == "droid"
    spec = "custom-columns=NAME:.metadata.name,TEAM:.metadata.labels.team"
    columns = rows(cli.ok("get", "sa", "-o", spec))
    assert columns[0] == ["NAME", "TEAM"]
    assert ["robot", "a"] in columns and ["droid", "<none>"] in columns

    err = cli.fails("get", "sa", "-o", "toml")
    assert err.startswith('error: unable to match a printer suitable for the output format "toml"')
    assert "unclosed" in cli.fails("get", "sa", "-o", "jsonpath={.items")


def test_go_templates(cli: Cli) -> None:
    """`oc get -o template --template=...` and `-o go-template=...`, as oc users write them."""
    project = current(cli)
    cli.ok("create", "-f", "-", input=manifest(account("robot", team="a"), account("droid")))
    names = '{{range .items}}{{.metadata.name}}{{"\\n"}}{{end}}'
    listed = cli.ok("get", "sa", "-o", "template", "--template", names).splitlines()
    assert {"robot", "droid", "builder"} <= set(listed)
    assert cli.ok("get", "sa", "-o", f"go-template={names}").splitlines() == listed
    assert cli.ok("get", "sa", "-o", "go-template", f"--template={names}").splitlines() == listed
    # --template alone means a Go template, as in kubectl.
    assert cli.ok("get", "sa", "--template", names).splitlines() == listed
    one = cli.ok(
        "get",
        "sa",
        "robot",
        "-o",
        'go-template={{.metadata.namespace}}/{{.metadata.name}} {{index .metadata.labels "team"}}'
        "{{if .metadata.labels.team}} labelled{{end}} {{.metadata.missing}}",
    )
    assert one == f"{project}/robot a labelled <no value>"
    # kubectl's --template serves -o jsonpath too.
    assert cli.ok("get", "sa", "robot", "-o", "jsonpath", "--template", "{.metadata.name}") == (
        "robot"
    )

    err = cli.fails("get", "sa", "-o", "go-template={{range .items}}")
    assert err.startswith("error: error parsing template {{range .items}}, "), err
    err = cli.fails("get", "sa", "robot", "-o", "go-template={{.metadata.name.first}}")
    assert err.startswith('error: error executing template "{{.metadata.name.first}}": '), err
    assert "can't evaluate field first in type string" in err
    assert "template format specified but no template given" in cli.fails(
        "get", "sa", "-o", "go-template"
    )
    assert "--template" in cli.fails("get", "sa", "-o", "json", "--template", "{{.}}")


def test_several_types_at_once(cli: Cli) -> None:
    tables = cli.ok("get", "sa,rolebindings").split("\n\n")
    assert len(tables) == 2
    assert rows(tables[0])[0] == ["NAME", "AGE"]
    assert "serviceaccount/builder" in [r[0] for r in rows(tables[0])]
    assert f"rolebinding.{RBAC}/admin" in [r[0] for r in rows(tables[1])]
    names = cli.ok("get", "sa,rolebinding", "-o=name").split()
    assert "serviceaccount/deployer" in names and f"rolebinding.{RBAC}/admin" in names
    listed = json.loads(cli.ok("get", "sa,secrets", "-o", "json"))
    assert {i["kind"] for i in listed["items"]} == {"ServiceAccount"}
    empty = cli.run("get", "secrets,routes")
    assert empty.err == f"No resources found in {current(cli)} namespace.\n"
    assert "several types" in cli.fails("get", "sa,secrets", "builder")


def test_get_missing_objects(cli: Cli) -> None:
    err = cli.fails("get", "sa", "nobody")
    assert err == 'error: serviceaccounts "nobody" not found\n'
    result = cli.run("get", "sa", "builder", "nobody")
    assert result.code == 1
    assert rows(result.out)[1][0] == "builder"
    assert cli.run("get", "sa", "nobody", "--ignore-not-found").code == 0
    assert "not found" in cli.fails("get", "route", "nothing", "-o", "json")


def test_global_and_verb_namespaces(cli: Cli) -> None:
    project = current(cli)
    cli.ok("project", "default")
    cli.ok("-n", project, "create", "-f", "-", input=manifest(account("here")))
    assert cli.ok("-n", project, "get", "sa", "here", "-o", "name") == "serviceaccount/here\n"
    assert cli.ok("get", "sa", "here", "-n", project, "-o", "name") == "serviceaccount/here\n"
    # The verb's -n beats the global one.
    assert cli.ok("-n", "default", "get", "sa", "here", "-n", project, "-o", "name")
    assert "not found" in cli.fails("get", "sa", "here")
    cli.ok("project", project)


def test_watch_prints_rows_as_they_come(cli: Cli) -> None:
    watcher = subprocess.Popen(
        [sys.executable, "-m", "wharf", "get", "sa", "-w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli.environment(),
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()

    def next_line(timeout: float = 30) -> str:
        try:
            return lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the watch printed nothing") from None

    try:
        assert next_line().split() == ["NAME", "AGE"]
        seen = {next_line().split()[0] for _ in range(3)}
        assert seen == {"builder", "default", "deployer"}
        cli.ok("create", "-f", "-", input=manifest(account("late-comer")))
        assert next_line().split()[0] == "late-comer"
        cli.ok("delete", "sa", "late-comer")
        assert next_line().split()[0] == "late-comer"
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)


def test_watch_only_in_json(cli: Cli) -> None:
    watcher = subprocess.Popen(
        [sys.executable, "-m", "wharf", "get", "sa", "--watch-only", "-o", "name"],
        stdout=subprocess.PIPE,
        text=True,
        env=cli.environment(),
    )
    assert watcher.stdout is not None
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in watcher.stdout or []:
            lines.put(line)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        # The watch may not be open yet when an object is made: make new ones (a bounded
        # number) until it reports one; --watch-only shows only what happens after it opened.
        made: list[str] = []
        for number in range(30):
            made.append(f"watched-{number}")
            cli.ok("create", "-f", "-", input=manifest(account(made[-1])))
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            assert line in {f"serviceaccount/{name}\n" for name in made}
            break
        else:
            raise AssertionError("the watch reported none of the objects made")
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)
        reader.join(timeout=30)


def test_describe(cli: Cli) -> None:
    project = current(cli)
    text = cli.ok("describe", "sa", "builder")
    assert text.startswith(
        f"Name:         builder\nNamespace:    {project}\nLabels:       <none>\n"
    )
    assert "Kind:         ServiceAccount\n" in text
    assert "Creation Timestamp:" in text
    binding = cli.ok("describe", "rolebinding", "admin")
    assert "Role:\n  Kind:  ClusterRole\n  Name:  admin\n" in binding
    assert [line.split() for line in binding.splitlines() if "kubeadmin" in line] == [
        ["User", "kubeadmin"]
    ]
    project_text = cli.ok("describe", f"project/{project}")
    assert "openshift.io/requester: kubeadmin" in project_text
    assert "Phase:  Active" in project_text
    assert cli.fails("describe", "sa", "nobody") == 'error: serviceaccounts "nobody" not found\n'


def test_create_apply_delete_from_files(cli: Cli, tmp_path: Path) -> None:
    project = current(cli)
    path = tmp_path / "objects.yaml"
    path.write_text(
        manifest(
            route("site", "site.example.com"),
            {"apiVersion": "v1", "kind": "List", "items": [account("one"), account("two")]},
        )
    )
    assert cli.ok("create", "-f", str(path)) == (
        f"route.{ROUTE_GROUP}/site created\nserviceaccount/one created\n"
        "serviceaccount/two created\n"
    )
    # Creating again: each failure is reported, and the command fails.
    result = cli.run("create", "-f", str(path))
    assert result.code == 1
    assert result.err.splitlines() == [
        f'error: routes.{ROUTE_GROUP} "site" already exists',
        'error: serviceaccounts "one" already exists',
        'error: serviceaccounts "two" already exists',
    ]
    assert cli.ok("apply", "-f", str(path)) == (
        f"route.{ROUTE_GROUP}/site unchanged\nserviceaccount/one unchanged\n"
        "serviceaccount/two unchanged\n"
    )
    changed = route("site", "www.example.com")
    changed["metadata"]["labels"] = {"tier": "front"}
    path.write_text(manifest(changed, account("three")))
    assert cli.ok("apply", "-f", str(path)) == (
        f"route.{ROUTE_GROUP}/site configured\nserviceaccount/three created\n"
    )
    site = json.loads(cli.ok("get", "route", "site", "-o", "json"))
    assert site["spec"]["host"] == "www.example.com"
    assert site["metadata"]["labels"] == {"tier": "front"}
    assert site["spec"]["to"]["name"] == "web"

    # JSON from stdin, and the real kubectl sees what wharf made.
    cli.ok("apply", "-f", "-", input=json.dumps(account("four")))
    done = subprocess.run(
        [kubectl(), "get", "sa", "four", "-n", project, "-o", "name"],
        capture_output=True,
        text=True,
        env=cli.environment(),
        timeout=60,
    )
    assert done.stdout == "serviceaccount/four\n", done.stderr

    assert cli.ok("delete", "-f", str(path)) == (
        f'route.{ROUTE_GROUP} "site" deleted\nserviceaccount "three" deleted\n'
    )
    assert cli.ok("delete", "sa", "one", "two") == (
        'serviceaccount "one" deleted\nserviceaccount "two" deleted\n'
    )
    assert cli.ok("delete", "sa/four") == 'serviceaccount "four" deleted\n'
    result = cli.run("delete", "sa", "one", "four")
    assert result.code == 1
    assert result.err.splitlines() == [
        'error: serviceaccounts "one" not found',
        'error: serviceaccounts "four" not found',
    ]
    assert cli.ok("delete", "sa", "one", "--ignore-not-found") == ""


def test_objects_in_other_namespaces_and_cluster_scoped(cli: Cli) -> None:
    project = current(cli)
    other = f"p-{uuid.uuid4().hex[:8]}"
    named = account("elsewhere")
    named["metadata"]["namespace"] = other
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}}
    assert cli.ok("create", "-f", "-", input=manifest(namespace, named)) == (
        f"namespace/{other} created\nserviceaccount/elsewhere created\n"
    )
    assert cli.ok("get", "sa", "elsewhere", "-n", other, "-o", "name")
    err = cli.fails("create", "-n", project, "-f", "-", input=manifest(named))
    assert f'does not match the namespace "{project}"' in err
    assert cli.ok("delete", "namespace", other) == f'namespace "{other}" deleted\n'


def test_bad_manifests(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    assert cli.fails("create", "-f", str(missing)) == (
        f'error: the path "{missing}" does not exist\n'
    )
    assert cli.fails("apply", "-f", str(missing)).startswith("error: the path")
    assert cli.fails("delete", "-f", str(missing)).startswith("error: the path")
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: ServiceAccount\nmetadata: {name: [unclosed\n")
    assert cli.fails("create", "-f", str(broken)).startswith(f'error: error parsing "{broken}"')
    assert cli.fails("apply", "-f", "-", input="{not json").startswith(
        'error: error parsing "STDIN"'
    )
    err = cli.fails("create", "-f", "-", input="metadata: {name: x}\n")
    assert err == 'error: error validating "STDIN": [apiVersion not set, kind not set]\n'
    widget = "apiVersion: v1\nkind: Widget\nmetadata: {name: x}\n"
    err = cli.fails("create", "-f", "-", input=widget)
    assert err == 'error: no matches for kind "Widget" in version "v1"\n'
    err = cli.fails("create", "-f", "-", input="- a\n- b\n")
    assert "is not an object" in err
    assert cli.fails("create", "-f", "-", input="") == "error: no objects passed to the command\n"
    assert "you must give" in cli.fails("create")
    assert "resource name may not be empty" in cli.fails(
        "apply", "-f", "-", input=manifest({"apiVersion": "v1", "kind": "ServiceAccount"})
    )
    invalid = cli.fails("create", "-f", "-", input=manifest(account("Not_Valid")))
    assert invalid.startswith('error: ServiceAccount "Not_Valid" is invalid: metadata.name')
    assert "you must give" in cli.fails("delete")


def test_usage_errors_are_errors_too(admin: Cli) -> None:
    err = admin.fails("get")
    assert err.startswith("error: Missing argument")
    assert "wharf get --help" in err
    assert admin.fails("get", "ns", "--no-such-flag").startswith("error: No such option")
    assert admin.fails("no-such-verb").startswith("error: No such command")


def test_unreachable_api_during_a_verb(cli: Cli, tmp_path: Path) -> None:
    broken = new_cli(tmp_path / "broken")
    broken.kubeconfig.write_text(cli.kubeconfig.read_text())
    config = broken.config()
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    broken.kubeconfig.write_text(yaml.safe_dump(config))
    for verb in (["get", "sa"], ["describe", "sa", "x"], ["apply", "-f", "-"], ["projects"]):
        err = broken.fails(*verb, input=manifest(account("x")))
        assert "The connection to the server 127.0.0.1:1 was refused" in err


def test_patch_changes_one_object_as_oc_patch_does(cli: Cli) -> None:
    cli.ok("create", "-f", "-", input=manifest(route("web", "web.example.com", tier="front")))
    # Bad input first: nothing is sent, nothing changes.
    assert "unable to parse" in cli.fails("patch", "route", "web", "-p", "{not json")
    assert "must be one of" in cli.fails("patch", "route", "web", "--type", "xml", "-p", "{}")
    assert "a JSON list" in cli.fails("patch", "route", "web", "--type", "json", "-p", "{}")
    assert "exactly one" in cli.fails("patch", "route", "web", "other", "-p", "{}")
    assert "not found" in cli.fails("patch", "route", "missing", "-p", '{"spec":{}}')
    assert json.loads(cli.ok("get", "route", "web", "-o", "json"))["spec"]["host"] == (
        "web.example.com"
    )

    out = cli.ok("patch", "route", "web", "--type=merge", "-p", '{"spec":{"host":"a.example.com"}}')
    assert out.strip() == "route.route.openshift.io/web patched"
    out = cli.ok("patch", "route/web", "--type=merge", "-p", '{"spec":{"host":"a.example.com"}}')
    assert out.strip() == "route.route.openshift.io/web patched (no change)"
    removed = '[{"op":"remove","path":"/metadata/labels/tier"}]'
    patched = json.loads(
        cli.ok("patch", "route", "web", "--type", "json", "-p", removed, "-o", "json")
    )
    assert patched["spec"]["host"] == "a.example.com"
    assert "tier" not in (patched["metadata"].get("labels") or {})
    # The default type, a strategic merge, as kubectl sends it.
    cli.ok("patch", "route", "web", "-p", '{"metadata":{"labels":{"tier":"back"}}}')
    assert cli.ok("get", "route", "web", "-o", "jsonpath={.metadata.labels.tier}") == "back"
    # The registry's Config, as the README's "Operating the registry" changes it.
    config = "configs.imageregistry.operator.openshift.io"
    for level in ("Debug", "Normal"):
        patch = json.dumps({"spec": {"logLevel": level}})
        cli.ok("patch", config, "cluster", "--type=merge", "-p", patch)
        assert cli.ok("get", config, "cluster", "-o", "jsonpath={.spec.logLevel}") == level
