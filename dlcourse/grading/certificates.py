"""TLS for a grading cluster: ``dlcourse cluster-certs DIR`` (:func:`make_certificates`) and ``--tls DIR`` (:func:`security`).

:func:`make_certificates` writes a private certificate authority and one certificate it signs, which the
scheduler, every worker and the client present (Dask requires a certificate of each end and checks it against
the CA; it checks no host name, so one certificate serves every machine). Made with ``cryptography``: RSA
3072-bit keys, SHA-256 signatures, every file readable by its owner alone. Only ``ca-key.pem`` must stay on
the instructor's machine; see ``docs/cluster.md``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from . import GradingRefused

#: The files ``dlcourse cluster-certs`` writes, which ``--tls DIR`` reads.
CA_FILE, CERT_FILE, KEY_FILE = "ca.pem", "node.pem", "node-key.pem"
CA_KEY_FILE = "ca-key.pem"
CERT_DAYS = 365
KEY_BITS = 3072


def security(folder: str | Path | None):
    """Dask's TLS settings from a folder that :func:`make_certificates` wrote (None: no TLS)."""
    if not folder:
        return None
    from distributed.security import Security

    folder = Path(folder)
    missing = [name for name in (CA_FILE, CERT_FILE, KEY_FILE) if not (folder / name).is_file()]
    if missing:
        raise GradingRefused(f"no TLS certificates in {folder} (missing {', '.join(missing)}); "
                             "make them with `dlcourse cluster-certs DIR`")
    ca, cert, key = (str(folder / name) for name in (CA_FILE, CERT_FILE, KEY_FILE))
    return Security(tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key, tls_scheduler_cert=cert,
                    tls_scheduler_key=key, tls_worker_cert=cert, tls_worker_key=key, require_encryption=True)


def make_certificates(folder: Path, days: int = CERT_DAYS, name: str = "dlcourse") -> list[Path]:
    """A private CA and one certificate it signs, for the scheduler, the workers and the client.

    Returns the paths of the CA's certificate and key, then the node's certificate and key.
    """
    try:
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError as error:
        raise GradingRefused(f"making certificates needs the cryptography package: pip install cryptography "
                             f"({error})") from error
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    node_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    ca_cert = _ca_certificate(ca_key, f"{name} course CA", days)
    node_cert = _node_certificate(node_key, name, ca_cert, ca_key, days)
    written = [(CA_FILE, _pem(ca_cert)), (CA_KEY_FILE, _pem(ca_key)), (CERT_FILE, _pem(node_cert)),
               (KEY_FILE, _pem(node_key))]
    for file_name, data in written:
        _write_private(folder / file_name, data)
    return [folder / file_name for file_name, _ in written]


def _ca_certificate(key, common_name: str, days: int):
    """A self-signed CA certificate that may sign certificates (and nothing below them)."""
    from cryptography import x509

    subject = _name(common_name)
    public = key.public_key()
    builder = _valid_for(x509.CertificateBuilder(), days).subject_name(subject).issuer_name(subject)
    builder = (builder.public_key(public)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(_key_usage(cert_sign=True), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False))
    return _signed(builder, key)


def _node_certificate(key, common_name: str, ca_cert, ca_key, days: int):
    """The certificate of every node (scheduler, worker, client), signed by the CA, for either end of TLS."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    public = key.public_key()
    builder = _valid_for(x509.CertificateBuilder(), days).subject_name(_name(common_name))
    builder = (builder.issuer_name(ca_cert.subject).public_key(public)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_key_usage(cert_sign=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                     ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    return _signed(builder, ca_key)


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _valid_for(builder, days: int):
    from cryptography import x509

    now = dt.datetime.now(dt.timezone.utc)
    return (builder.serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))  # a worker's clock a little behind still accepts it
            .not_valid_after(now + dt.timedelta(days=days)))


def _key_usage(cert_sign: bool):
    from cryptography import x509

    return x509.KeyUsage(digital_signature=True, key_encipherment=not cert_sign, content_commitment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         encipher_only=False, decipher_only=False)


def _signed(builder, key):
    from cryptography.hazmat.primitives import hashes

    return builder.sign(private_key=key, algorithm=hashes.SHA256())


def _pem(item) -> bytes:
    """A certificate or an unencrypted private key (PKCS#8) as PEM."""
    from cryptography.hazmat.primitives import serialization

    if hasattr(item, "private_bytes"):
        return item.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    return item.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``path`` readable by its owner alone (also when it was there before, with other permissions)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
