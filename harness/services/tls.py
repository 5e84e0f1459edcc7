"""TLS for the local stand-ins of managed services, so clients connect the way they do in AWS.

Amazon MQ speaks only AMQPS, ElastiCache with transit encryption only TLS, and RDS for
PostgreSQL 15+ refuses unencrypted connections. A client that works locally over plain TCP
could fail in AWS, so the harness's RabbitMQ, Redis and PostgreSQL listen with TLS too, with
a certificate from a private CA made for the run (trustme). The compute trusts that CA
through SSL_CERT_FILE, as it trusts Amazon's CAs in AWS through the system store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path
    #: the certificate and key in one file (some servers want that)
    bundle: Path

    def readable_by(self, uid: int, gid: int) -> None:
        """Hand the key to the server's own user (PostgreSQL insists on owning it, mode 0600)."""
        for path in (self.cert, self.key):
            os.chown(path, uid, gid)


def make(directory: Path, names: list[str]) -> TlsFiles:
    """A CA and a server certificate for `names` (host names or IP addresses) in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    authority = trustme.CA(organization_name="pipeline-harness local CA")
    server = authority.issue_cert(*names)
    files = TlsFiles(
        ca=directory / "ca.pem",
        cert=directory / "server.pem",
        key=directory / "server.key",
        bundle=directory / "server-bundle.pem",
    )
    authority.cert_pem.write_to_path(str(files.ca))
    for blob in server.cert_chain_pems:
        blob.write_to_path(str(files.cert), append=True)
    server.private_key_pem.write_to_path(str(files.key))
    server.private_key_and_cert_chain_pem.write_to_path(str(files.bundle))
    for path in (files.key, files.bundle):
        path.chmod(0o600)
    files.ca.chmod(0o644)
    files.cert.chmod(0o644)
    return files
