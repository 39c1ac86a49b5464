"""Dev PKI: created once, reused afterwards, and fit for mutual TLS."""

from __future__ import annotations

import ipaddress
import json
import stat
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from hersys_client.devpki import ensure_dev_pki

ROOT = Path(__file__).resolve().parents[2]


def test_created_once_then_reused(tmp_path) -> None:
    first = ensure_dev_pki(tmp_path / "pki")
    contents = {p: p.read_bytes() for p in (first.ca_cert, first.server_cert, first.client_cert, first.client_key)}
    second = ensure_dev_pki(tmp_path / "pki")
    assert second == first
    assert all(p.read_bytes() == data for p, data in contents.items())


def test_certificates_fit_mutual_tls(tmp_path) -> None:
    pki = ensure_dev_pki(tmp_path)
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    client = x509.load_pem_x509_certificate(pki.client_cert.read_bytes())
    for leaf in (server, client):
        leaf.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    for key in (pki.ca_key, pki.server_key, pki.client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_partial_directory_is_regenerated_consistently(tmp_path) -> None:
    pki = ensure_dev_pki(tmp_path)
    pki.client_cert.unlink()
    again = ensure_dev_pki(tmp_path)
    ca = x509.load_pem_x509_certificate(again.ca_cert.read_bytes())
    x509.load_pem_x509_certificate(again.client_cert.read_bytes()).verify_directly_issued_by(ca)


def test_cli_prints_the_paths(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-m", "hersys_client.devpki", str(tmp_path / "cli")], cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=60)
    paths = json.loads(out.stdout)
    assert Path(paths["client_cert"]).is_file() and Path(paths["ca_cert"]).is_file()
