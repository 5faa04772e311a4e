"""The Config's extra routes on a Wharf that serves its registry over TLS: each routes[] entry
gets a Route and a certificate for its hostname (issued from Wharf's CA, or the one in its
secretName), served to clients that name the host; a missing secret degrades the registry;
routes the Config no longer names go. And `wharf get` shows the Config as kubectl does."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from tests.support.cli import Cli
from tests.support.cluster import Cluster, Kubectl
from tests.support.operator_admin import CONFIG, RegistryAdmin
from tests.support.server import running_wharf

NAMESPACE = "openshift-image-registry"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("operator-routes")
    with running_wharf(base / "data", integrated=True) as process:
        yield Cluster(process, base)


@pytest.fixture(scope="module")
def kubectl(cluster: Cluster) -> Kubectl:
    return cluster.kubectl()


@pytest.fixture(scope="module")
def admin(kubectl: Kubectl) -> RegistryAdmin:
    return RegistryAdmin(kubectl)


def served_certificate(cluster: Cluster, host: str, ca_file: Path) -> x509.Certificate:
    """The certificate the registry serves to a client that asks for `host`, verified
    against `ca_file` for that host name."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection(("127.0.0.1", cluster.wharf.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def dns_names(cert: x509.Certificate) -> list[str]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(name) for name in names.get_values_for_type(x509.DNSName)]


def test_a_route_gets_a_route_and_a_certificate_for_its_host(
    cluster: Cluster, admin: RegistryAdmin, kubectl: Kubectl
) -> None:
    admin.patch({"routes": [{"name": "mirror", "hostname": "mirror.registry.test"}]})
    route = kubectl.json("get", "-n", NAMESPACE, "route", "mirror")
    assert route["spec"]["host"] == "mirror.registry.test"
    assert route["spec"]["tls"]["termination"] == "reencrypt"
    assert route["status"]["ingress"][0]["conditions"][0]["type"] == "Admitted"
    cert = served_certificate(cluster, "mirror.registry.test", cluster.wharf.ca_file)
    assert dns_names(cert) == ["mirror.registry.test"]
    # Clients that name no route's host get the registry's own certificate, as before.
    assert "mirror.registry.test" not in dns_names(
        served_certificate(cluster, "localhost", cluster.wharf.ca_file)
    )


def test_a_route_with_a_secret_serves_the_secret(
    cluster: Cluster, admin: RegistryAdmin, kubectl: Kubectl, tmp_path: Path
) -> None:
    from wharf.tls import Certificates  # another CA than the registry's, as a user brings

    theirs = Certificates(tmp_path / "theirs")
    theirs.ensure([])
    chain, key = theirs.issue(["pushed.registry.test"])
    (tmp_path / "tls.crt").write_bytes(chain)
    (tmp_path / "tls.key").write_bytes(key)
    routes = [
        {"name": "mirror", "hostname": "mirror.registry.test"},
        {"name": "pushed", "hostname": "pushed.registry.test", "secretName": "pushed-tls"},
    ]
    config = admin.patch({"routes": routes})
    degraded = admin.condition("Degraded", config)
    assert degraded["status"] == "True" and degraded["reason"] == "RouteDegraded"
    assert "pushed-tls" in degraded["message"]

    kubectl.run(
        "create", "secret", "tls", "pushed-tls", "-n", NAMESPACE,
        "--cert", str(tmp_path / "tls.crt"), "--key", str(tmp_path / "tls.key"),
    )  # fmt: skip
    kubectl.run(
        "wait",
        "--for=jsonpath={.status.conditions[?(@.type=='Degraded')].status}=False",
        f"{CONFIG}/cluster",
        "--timeout=10s",
    )
    cert = served_certificate(cluster, "pushed.registry.test", theirs.ca_cert)
    assert dns_names(cert) == ["pushed.registry.test"]

    admin.patch({"routes": None})
    names = kubectl.run("get", "-n", NAMESPACE, "routes", "-o", "name").stdout.split()
    assert names == ["route.route.openshift.io/default-route"]
    with pytest.raises(ssl.SSLCertVerificationError):
        served_certificate(cluster, "mirror.registry.test", cluster.wharf.ca_file)


def test_wharf_get_shows_the_config(kubectl: Kubectl, tmp_path: Path) -> None:
    cli = Cli(kubectl.kubeconfig, tmp_path)
    shown = yaml.safe_load(cli.ok("get", "config.imageregistry", "cluster", "-o", "yaml"))
    assert shown["kind"] == "Config" and shown["spec"]["managementState"] == "Managed"
    kinds = {c["type"]: c["status"] for c in shown["status"]["conditions"]}
    assert kinds["Available"] == "True"
    table = cli.ok("get", "clusteroperator", "image-registry")
    assert table.splitlines()[1].split()[:5] == [
        "image-registry",
        "0.1.0",
        "True",
        "False",
        "False",
    ]
