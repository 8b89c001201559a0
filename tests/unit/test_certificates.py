"""dlcourse.grading.certificates: `dlcourse cluster-certs` made with cryptography, checked by a real TLS handshake."""

from __future__ import annotations

import ssl
import stat

import pytest

from dlcourse.grading import GradingRefused
from dlcourse.grading.certificates import CA_FILE, CERT_FILE, KEY_FILE, make_certificates, security


def _context(folder, server: bool, ca_folder=None) -> ssl.SSLContext:
    """What Dask's Security makes of the folder: our certificate, and the CA's to check the other end's."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    context.load_cert_chain(folder / CERT_FILE, folder / KEY_FILE)
    context.load_verify_locations(cafile=(ca_folder or folder) / CA_FILE)
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = False
    return context


def _handshake(server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> tuple[dict, dict]:
    """A TLS handshake in memory (no socket); the peer certificate each end saw."""
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    client = client_context.wrap_bio(client_in, client_out, server_side=False)
    done = set()
    for _ in range(20):
        for end in (client, server):
            if end not in done:
                try:
                    end.do_handshake()
                    done.add(end)
                except ssl.SSLWantReadError:
                    pass
        client_in.write(server_out.read())
        server_in.write(client_out.read())
        if len(done) == 2:
            return server.getpeercert(), client.getpeercert()
    raise AssertionError("the handshake did not finish")


@pytest.fixture(scope="module")
def two_folders(tmp_path_factory):
    first, second = tmp_path_factory.mktemp("certs-a"), tmp_path_factory.mktemp("certs-b")
    return first, make_certificates(first, name="course-a"), second, make_certificates(second, name="course-b")


def test_the_four_files_are_written_readable_by_their_owner_alone(two_folders):
    folder, paths, _, _ = two_folders
    assert [p.name for p in paths] == [CA_FILE, "ca-key.pem", CERT_FILE, KEY_FILE]
    for path in paths:
        assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert path.read_text().startswith("-----BEGIN "), path
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths)  # nothing else left behind


def test_each_end_accepts_the_other_signed_by_the_same_ca(two_folders):
    folder, _, _, _ = two_folders
    server_saw, client_saw = _handshake(_context(folder, True), _context(folder, False))
    for seen in (server_saw, client_saw):
        assert dict(item[0] for item in seen["subject"])["commonName"] == "course-a"
        assert dict(item[0] for item in seen["issuer"])["commonName"] == "course-a course CA"


@pytest.mark.parametrize("stranger_is", ["client", "server"])
def test_an_end_whose_certificate_another_ca_signed_is_refused(two_folders, stranger_is):
    ours, _, theirs, _ = two_folders
    server = _context(theirs if stranger_is == "server" else ours, True, ca_folder=ours)
    client = _context(theirs if stranger_is == "client" else ours, False, ca_folder=ours)
    with pytest.raises(ssl.SSLError):
        _handshake(server, client)


def test_dasks_security_reads_the_folder_and_a_missing_file_is_refused_with_the_command_to_run(two_folders,
                                                                                                  tmp_path):
    folder, _, _, _ = two_folders
    settings = security(folder)
    assert settings.require_encryption and settings.tls_ca_file == str(folder / CA_FILE)
    assert security(None) is None
    (tmp_path / CA_FILE).write_text((folder / CA_FILE).read_text())
    with pytest.raises(GradingRefused, match="missing node.pem, node-key.pem.*dlcourse cluster-certs DIR"):
        security(tmp_path)


def test_making_them_again_replaces_every_file_and_keeps_them_private(tmp_path):
    first = {p.name: p.read_bytes() for p in make_certificates(tmp_path, days=2)}
    (tmp_path / KEY_FILE).chmod(0o644)
    second = {p.name: p.read_bytes() for p in make_certificates(tmp_path, days=2)}
    assert all(first[name] != second[name] for name in first)
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
