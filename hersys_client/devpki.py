"""Development PKI for the HER-SYS sandbox: a CA, a server certificate and a client certificate.

`ensure_dev_pki(dir)` creates the files once and afterwards only returns their paths, so `make run`, tests and
benchmarks can all call it. These keys are for development and tests only: production certificates for the
HER-SYS WebAPI come from the operator of the national system.

CLI: ``python -m hersys_client.devpki DIR`` prints the paths as JSON.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: DNS names the server certificate is valid for (localhost plus the docker-compose service names).
SERVER_DNS_NAMES = ("localhost", "sandbox", "hersys-sandbox")
SERVER_IPS = ("127.0.0.1", "::1")
CLIENT_COMMON_NAME = "hersys-assist-dc-worker"
_VALIDITY = dt.timedelta(days=5 * 365)


@dataclass(frozen=True)
class DevPKI:
    """Paths of the generated PEM files."""

    dir: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @property
    def client_pair(self) -> tuple[str, str]:
        """(cert, key) as expected by `HersysClient(cert=...)`."""
        return (str(self.client_cert), str(self.client_key))

    def as_json(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


def _paths(directory: Path) -> DevPKI:
    return DevPKI(
        dir=directory,
        ca_cert=directory / "ca.pem",
        ca_key=directory / "ca-key.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
    )


def ensure_dev_pki(directory: str | os.PathLike[str]) -> DevPKI:
    """Create the dev CA, server and client certificates in `directory` unless they all exist already.

    Idempotent and safe to call from several processes at once (an advisory file lock serialises creation).
    If only some files exist (an interrupted run), everything is regenerated so the set stays consistent.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    paths = _paths(d)
    files = [p for name, p in asdict(paths).items() if name != "dir"]
    if all(Path(p).is_file() for p in files):
        return paths
    with _locked(d / ".devpki.lock"):
        if not all(Path(p).is_file() for p in files):  # another process may have finished meanwhile
            _generate(paths)
    return paths


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HER-SYS assist (development only)"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _generate(paths: DevPKI) -> None:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = _new_key()
    ca_name = _name("HER-SYS assist dev CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, usage: x509.ObjectIdentifier, san: list[x509.GeneralName]) -> tuple[bytes, bytes]:
        key = _new_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
            )
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    server_san: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVER_DNS_NAMES]
    server_san += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    server_pem, server_key_pem = leaf("localhost", ExtendedKeyUsageOID.SERVER_AUTH, server_san)
    client_pem, client_key_pem = leaf(CLIENT_COMMON_NAME, ExtendedKeyUsageOID.CLIENT_AUTH, [])

    # Keys first, certificates last: `ensure_dev_pki` treats the set as complete only when all files exist.
    _write(paths.ca_key, _key_pem(ca_key), private=True)
    _write(paths.server_key, server_key_pem, private=True)
    _write(paths.client_key, client_key_pem, private=True)
    _write(paths.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(paths.server_cert, server_pem)
    _write(paths.client_cert, client_pem)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write atomically (temp file + rename) so a reader never sees half a PEM file."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m hersys_client.devpki DIR", file=sys.stderr)
        return 2
    print(json.dumps(ensure_dev_pki(args[0]).as_json(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
