"""TLS and mutual TLS as `serve` options, with certificates made by the openssl CLI per test."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.transport.app import Config, create_server
from tests.security.support import ServerProcess, migrate, start_server, write_tokens

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI"),
]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=d)  # fmt: skip


def make_leaf(d: Path, name: str, ca: str, san: str) -> None:
    (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
            cwd=d)  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    make_ca(d, "ca")
    make_ca(d, "rogue-ca")
    make_leaf(d, "server", "ca", "DNS:localhost,IP:127.0.0.1")
    make_leaf(d, "client", "ca", "DNS:client")
    make_leaf(d, "rogue", "rogue-ca", "DNS:rogue")
    return d


@pytest.fixture(scope="module")
def served_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    d = tmp_path_factory.mktemp("tlsdb")
    url = f"sqlite:///{d / 'tls.db'}"
    migrate(url)
    tokens = d / "tokens.json"
    write_tokens(tokens, {"t": ("tls-secret", ["event:read"])})
    return url, tokens


def server_with(served_db: tuple[str, Path], *args: str) -> Iterator[ServerProcess]:
    server = start_server(*served_db, *args)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls_server(certs: Path, served_db: tuple[str, Path]) -> Iterator[ServerProcess]:
    yield from server_with(served_db, "--tls-cert", str(certs / "server.pem"),
                           "--tls-key", str(certs / "server.key"))  # fmt: skip


@pytest.fixture(scope="module")
def mtls_server(certs: Path, served_db: tuple[str, Path]) -> Iterator[ServerProcess]:
    yield from server_with(served_db, "--tls-cert", str(certs / "server.pem"),
                           "--tls-key", str(certs / "server.key"),
                           "--tls-client-ca", str(certs / "ca.pem"))  # fmt: skip


def credentials(certs: Path, client: str | None = None) -> grpc.ChannelCredentials:
    key = (certs / f"{client}.key").read_bytes() if client else None
    chain = (certs / f"{client}.pem").read_bytes() if client else None
    return grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes(), key, chain)


def health(channel: grpc.Channel) -> grpc.StatusCode:
    try:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    except grpc.RpcError as err:
        return err.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_a_tls_server_answers_a_client_that_trusts_its_ca(certs: Path, tls_server: ServerProcess) -> None:
    with grpc.secure_channel(tls_server.target, credentials(certs)) as channel:
        assert health(channel) == grpc.StatusCode.OK


def test_a_tls_server_refuses_plaintext(tls_server: ServerProcess) -> None:
    with grpc.insecure_channel(tls_server.target) as channel:
        assert health(channel) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_accepts_a_client_certificate_from_the_configured_ca(
    certs: Path, mtls_server: ServerProcess
) -> None:
    with grpc.secure_channel(mtls_server.target, credentials(certs, "client")) as channel:
        assert health(channel) == grpc.StatusCode.OK


def test_mutual_tls_refuses_a_client_without_a_certificate(certs: Path, mtls_server: ServerProcess) -> None:
    with grpc.secure_channel(mtls_server.target, credentials(certs)) as channel:
        assert health(channel) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_refuses_a_certificate_from_another_ca(certs: Path, mtls_server: ServerProcess) -> None:
    with grpc.secure_channel(mtls_server.target, credentials(certs, "rogue")) as channel:
        assert health(channel) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    "files",
    [{"tls_client_ca": "ca.pem"}, {"tls_cert": "server.pem"}, {"tls_key": "server.key"}],
)
def test_incomplete_tls_options_are_refused_at_startup(certs: Path, migrated: str, files: dict[str, str]) -> None:
    config = Config(database_url=migrated, **{k: str(certs / v) for k, v in files.items()})
    with pytest.raises(ValueError, match="--tls-"):
        create_server(config)
