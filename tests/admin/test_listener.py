"""The admin listener as `mcp-auth-gateway serve` runs it (a subprocess on the embedded store): its own port, never
the public one; HTTPS with client certificates (admin.tls) that stand in for the bearer (issue 15)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.admin.conftest import ADMIN_TOKEN, BEARER
from tests.support.processes import free_port, wait_for_port

CLI = [sys.executable, "-m", "gateway"]


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Issued:
    issued = Issued(directory / f"{stem}.pem", directory / f"{stem}.key")
    issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    issued.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return issued


class Authority:
    """A throwaway CA that signs a server certificate for 127.0.0.1 and client certificates."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory, self.key = directory, ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.path = _write(directory, name, self.cert, self.key).cert

    def issue(self, common_name: str, *, server: bool) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if server:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return _write(self.directory, common_name, builder.sign(self.key, hashes.SHA256()), key)


@dataclass(frozen=True)
class Serving:
    public: str
    admin: str
    log: Path


@contextmanager
def serving_with(tmp_path: Path, admin_yaml: str) -> Iterator[Serving]:
    port, admin_port = free_port(), free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"public_url: http://127.0.0.1:{port}\n"
        f"listen: {{host: 127.0.0.1, port: {port}, metrics_port: null}}\n"
        f"store: {{data_dir: {tmp_path / 'data'}}}\naudit: {{enabled: false}}\n"
        f"admin:\n  listen: {{host: 127.0.0.1, port: {admin_port}}}\n{admin_yaml}"
        "routes:\n  - {name: alpha, path: /alpha/mcp, upstream: 'http://127.0.0.1:9/mcp'}\n"
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*CLI, "serve", "-c", str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, deadline=30)
        wait_for_port(admin_port, process, deadline=30)
        yield Serving(f"http://127.0.0.1:{port}", f"127.0.0.1:{admin_port}", log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[Serving]:
    with serving_with(tmp_path, f"  token: {ADMIN_TOKEN}\n") as serving:
        yield serving


async def test_the_admin_api_has_its_own_listener_and_is_not_on_the_public_port(plain: Serving) -> None:
    async with aiohttp.ClientSession() as http:
        users = await http.get(f"http://{plain.admin}/api/users", headers=BEARER)
        assert users.status == 200 and await users.json() == {"users": [], "truncated": False}
        refused = await http.get(f"http://{plain.admin}/api/users")
        assert refused.status == 401 and refused.headers["WWW-Authenticate"] == 'Bearer realm="admin"'
        for path in ("/api/users", "/api/openapi.json"):
            public = await http.get(f"{plain.public}{path}", headers=BEARER)
            assert public.status == 404, path
    assert f"admin API on http://{plain.admin}/api/" in plain.log.read_text()


def _client_context(ca: Path, client: Issued | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca)
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    return context


async def _status(url: str, context: ssl.SSLContext, headers: dict[str, str] | None = None) -> int | str:
    """The HTTP status, or the name of the failure when the TLS handshake refused the connection."""
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
            async with http.get(url, headers=headers or {}) as response:
                await response.read()
                return response.status
    except (aiohttp.ClientError, ssl.SSLError, OSError) as exc:
        return type(exc).__name__


async def test_a_client_certificate_signed_by_the_ca_is_let_in_without_a_bearer(tmp_path: Path) -> None:
    """admin.tls.client_ca_file without admin.token: every connection needs a certificate that CA signed."""
    ca, stranger = Authority(tmp_path, "admin-ca"), Authority(tmp_path, "other-ca")
    server, operator = ca.issue("gateway", server=True), ca.issue("operator", server=False)
    intruder = stranger.issue("intruder", server=False)
    tls = f"  tls: {{cert_file: {server.cert}, key_file: {server.key}, client_ca_file: {ca.path}}}\n"
    with serving_with(tmp_path, tls) as serving:
        url = f"https://{serving.admin}/api/users"
        assert await _status(url, _client_context(ca.path, operator)) == 200
        assert isinstance(await _status(url, _client_context(ca.path, None)), str)  # no certificate: no connection
        assert isinstance(await _status(url, _client_context(ca.path, intruder)), str)  # another CA's: none either
        assert f"admin API on https://{serving.admin}/api/" in serving.log.read_text()


async def test_beside_a_token_a_certificate_is_optional_but_one_of_them_is_needed(tmp_path: Path) -> None:
    ca = Authority(tmp_path, "admin-ca")
    server, operator = ca.issue("gateway", server=True), ca.issue("operator", server=False)
    tls = f"  tls: {{cert_file: {server.cert}, key_file: {server.key}, client_ca_file: {ca.path}}}\n"
    tls += f"  token: {ADMIN_TOKEN}\n"
    with serving_with(tmp_path, tls) as serving:
        url = f"https://{serving.admin}/api/users"
        assert await _status(url, _client_context(ca.path, operator)) == 200
        assert await _status(url, _client_context(ca.path, None), BEARER) == 200
        assert await _status(url, _client_context(ca.path, None)) == 401  # neither a certificate nor the bearer
        revoke = f"https://{serving.admin}/api/users/nobody/revoke"
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=_client_context(ca.path, operator))
        ) as http:
            assert (await http.post(revoke)).status == 404
        assert "admin POST /api/users/nobody/revoke by certificate:operator" in serving.log.read_text()
