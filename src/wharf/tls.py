"""The certificate authority Wharf makes for itself, and the serving certificate it signs.

Both live in `<data-dir>/tls/`; clients trust `ca.crt` (`wharf login` writes it into the
kubeconfig, `wharf registry trust` installs it for podman)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVING_DAYS = 825


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Written whole under another name, then renamed: a server starting or a handshake never
    reads half a file."""
    staged = path.with_name(f"{path.name}.tmp")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)
    staged.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Wharf"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


class Certificates:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca_cert = directory / "ca.crt"
        self.ca_key = directory / "ca.key"
        self.cert = directory / "tls.crt"
        self.key = directory / "tls.key"
        self._route_contexts: dict[str, tuple[int, ssl.SSLContext]] = {}

    def ensure(self, hosts: list[str]) -> None:
        """Make the CA on first use; (re)make the serving certificate when a host is missing."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.ca_cert.exists():
            self._make_ca()
        wanted = sorted({"localhost", "127.0.0.1", *hosts} - {"", "0.0.0.0", "::"})
        if not self.cert.exists() or not self._covers(wanted):
            self._make_serving(wanted)

    def _make_ca(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("wharf-ca"))
            .issuer_name(_name("wharf-ca"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        _write(self.ca_key, _key_pem(key))
        _write(self.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)

    def _covers(self, hosts: list[str]) -> bool:
        cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        present = {str(v) for v in names.get_values_for_type(x509.DNSName)}
        present |= {str(v) for v in names.get_values_for_type(x509.IPAddress)}
        expires = cert.not_valid_after_utc
        soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
        return set(hosts) <= present and expires > soon

    def _make_serving(self, hosts: list[str]) -> None:
        cert, key = self.issue(hosts)
        _write(self.key, key)
        _write(self.cert, cert, 0o644)

    def issue(self, hosts: list[str]) -> tuple[bytes, bytes]:
        """A serving certificate for `hosts` signed by the CA, with the CA after it, and its
        key, both PEM."""
        ca_key = serialization.load_pem_private_key(self.ca_key.read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(hosts[0]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SERVING_DAYS))
            .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        chain = cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(
            serialization.Encoding.PEM
        )
        return chain, _key_pem(key)

    # Certificates for the hosts of the registry's extra routes (the operator writes them, from
    # a route's secret or issued here): served to a client that names the host (SNI).

    @property
    def routes_directory(self) -> Path:
        return self.directory / "routes"

    def _route_file(self, host: str) -> Path:
        return self.routes_directory / f"{host.lower()}.pem"

    def install_route(self, host: str, cert: bytes, key: bytes) -> bool:
        """Serve `cert` (PEM chain) with `key` to clients that ask for `host`; False when that
        pair is already what is served."""
        self.routes_directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._route_file(host)
        content = key + cert
        if path.exists() and path.read_bytes() == content:
            return False
        _write(path, content)
        return True

    def route_hosts(self) -> list[str]:
        if not self.routes_directory.is_dir():
            return []
        return sorted(p.name.removesuffix(".pem") for p in self.routes_directory.glob("*.pem"))

    def remove_route(self, host: str) -> None:
        self._route_file(host).unlink(missing_ok=True)

    def _route_context(self, host: str) -> ssl.SSLContext | None:
        path = self._route_file(host)
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            return None
        cached = self._route_contexts.get(host)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        context = self._context(path, path)
        self._route_contexts[host] = (stamp, context)
        return context

    def _context(self, cert: Path, key: Path) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        return context

    def server_context(self) -> ssl.SSLContext:
        """The serving context; a client that names the host of a route with a certificate
        of its own (SNI) is served that certificate instead."""
        context = self._context(self.cert, self.key)

        def choose(connection: ssl.SSLObject, host: str | None, _: ssl.SSLContext) -> None:
            if host and not host.startswith(".") and "/" not in host:
                try:
                    found = self._route_context(host)
                except (OSError, ssl.SSLError):
                    found = None  # a bad file: the default certificate, not a failed handshake
                if found is not None:
                    connection.context = found

        context.sni_callback = choose
        return context
