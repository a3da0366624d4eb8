"""What the production shape is built from: a copy of the pinned Keycloak built once for it (`kc.sh build`), the
TLS certificates of its proxy (signed by a local CA made at first start), and its secrets file."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from devstack.keycloak_server import CACHE_DIR, KEYCLOAK_VERSION, build_extension, EXTENSION_JAR, keycloak_home

ROOT = Path(__file__).resolve().parent.parent
# Build options: changing them (or the extension) makes a new build copy (keyed by their hash).
BUILD_OPTIONS = ("--db=postgres", "--health-enabled=true", "--metrics-enabled=true")
# The secrets of the shape (var/production/secrets.json, made at first start; systemd's environment file).
SECRET_NAMES = ("KEYCLOAK_ADMIN_PASSWORD", "KC_DB_PASSWORD", "CIMR_DB_PASSWORD", "PORTAL_SECRET_KEY",
                "PROVISIONER_CLIENT_SECRET", "AUDITOR_CLIENT_SECRET", "DELEGATIONS_CLIENT_SECRET",
                "PORTAL_CLIENT_SECRET", "TELEDECLARATION_CLIENT_SECRET", "COMPTE_ADHERENT_CLIENT_SECRET",
                "EASYPAIEMENT_CLIENT_SECRET", "ELIQUIDATION_CLIENT_SECRET")


def optimized_keycloak(options: tuple[str, ...] = BUILD_OPTIONS, version: str = KEYCLOAK_VERSION) -> Path:
    """A copy of the distribution of ``version`` (the pinned one by default) with our extension, built
    (`kc.sh build`) with ``options``.

    The cached distribution is never changed: the copy lives beside it, named by a hash of the options and the
    extension jar, so it is rebuilt only when they change. Built in a temporary directory, then renamed.
    """
    source = keycloak_home(version)
    jar = build_extension(source, version)
    digest = hashlib.sha256(version.encode() + "\0".join(options).encode() + jar.read_bytes())
    home = CACHE_DIR / f"keycloak-{version}-optimized-{digest.hexdigest()[:12]}"
    if (home / "lib" / "quarkus" / ".cimr-built").exists():
        return home
    tmp = home.with_name(f".{home.name}.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, symlinks=True, ignore=shutil.ignore_patterns("data", "*.log"))
    for stale in (tmp / "providers").glob("*.jar"):
        stale.unlink()
    shutil.copyfile(jar, tmp / "providers" / EXTENSION_JAR)
    print(f"» Building Keycloak for production ({' '.join(options)}) in {home} ...", file=sys.stderr)
    result = subprocess.run([str(tmp / "bin" / "kc.sh"), "build", *options], capture_output=True, text=True)
    if result.returncode:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"kc.sh build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    (tmp / "lib" / "quarkus" / ".cimr-built").write_text(" ".join(options) + "\n")
    try:
        tmp.rename(home)
    except OSError:  # built meanwhile by another run
        shutil.rmtree(tmp, ignore_errors=True)
    # Each extension change makes a copy (~260 MB): keep the three newest (a running stack may use an older one).
    copies = sorted(CACHE_DIR.glob(f"keycloak-{version}-optimized-*"), key=lambda p: p.stat().st_mtime)
    for old in copies[:-3]:
        shutil.rmtree(old, ignore_errors=True)
    return home


def make_certificates(directory: Path, names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> tuple[Path, Path]:
    """A local CA and the proxy's certificate signed by it (made once, again when ``names`` are not all in it);
    returns (ca.pem, proxy.pem cert+key)."""
    ca_file, proxy_file = directory / "ca.pem", directory / "proxy.pem"
    if ca_file.exists() and proxy_file.exists() and set(names) <= certificate_names(proxy_file):
        return ca_file, proxy_file
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CIMR devstack local CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=825))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.IPAddress(ipaddress.ip_address(n)) if re.fullmatch(r"[\d.]+", n) else x509.DNSName(n)
            for n in names]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            # At most 366 days (Mozilla's intermediate profile).
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    proxy_file.write_bytes(cert.public_bytes(pem) + key_pem)
    proxy_file.chmod(0o600)
    ca_file.write_bytes(ca.public_bytes(pem))
    return ca_file, proxy_file


def certificate_names(pem_file: Path) -> set[str]:
    """The DNS names and IP addresses a PEM certificate is valid for."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pem_file.read_bytes())
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return set(sans.get_values_for_type(x509.DNSName)) | {str(a) for a in sans.get_values_for_type(x509.IPAddress)}


def load_secrets(path: Path) -> dict[str, str]:
    """The stack's passwords and client secrets: generated at first start, kept in ``path`` (0600)."""
    known = json.loads(path.read_text()) if path.exists() else {}
    missing = [n for n in SECRET_NAMES if n not in known]
    if missing:
        known.update({n: secrets.token_urlsafe(24) for n in missing})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known, indent=2) + "\n")
        path.chmod(0o600)
    return known
