"""Hand-in files: kept content-addressed (by SHA-256) and durable, and read back safely.

A hand-in is stored once, as uploaded, at ``objects/<ab>/<sha256>``: written
to a temporary file, ``fsync``-ed, renamed into place and its folder
``fsync``-ed, so that once :meth:`FileStore.put` returns the bytes survive a
power cut. Two identical uploads share one file.

:func:`handin_files` turns an upload (a notebook, or a ``dlcourse handin``
zip) into the files ``dlcourse collect`` would keep (the notebooks and
PDFs), refusing what must not be unpacked: a member that escapes its folder,
a link, too many members, or one that expands past a ratio or a size.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path, PurePosixPath

from ..lms.collect import KEPT_SUFFIXES

#: A hand-in zip holds a few notebooks, PDFs and HANDIN.txt; more members than this is no hand-in.
MAX_MEMBERS = 64
#: Uncompressed size of one member over its compressed size: notebooks compress about 5x, PDFs barely.
MAX_RATIO = 200
#: All members together, uncompressed.
MAX_UNPACKED_BYTES = 200 * 2**20


class BadHandin(ValueError):
    """The upload is refused; the message names the problem and what to do."""


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int


class FileStore:
    """Content-addressed files under ``root/objects``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.objects = self.root / "objects"

    def path(self, sha256: str) -> Path:
        return self.objects / sha256[:2] / sha256

    def put(self, data: bytes) -> StoredFile:
        """Store ``data`` durably (fsync of the file and of its folder); raises OSError (e.g. ENOSPC)."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.is_file() and target.stat().st_size == len(data):
            return StoredFile(digest, len(data))
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        fsync_folder(target.parent)
        return StoredFile(digest, len(data))

    def get(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def handin_files(filename: str, data: bytes) -> dict[str, bytes]:
    """The notebooks and PDFs of an upload (file name -> bytes), or :class:`BadHandin` saying why not."""
    suffix = PurePosixPath(filename or "").suffix.lower()
    if data[:4] == b"PK\x03\x04" or suffix == ".zip":
        files = _zip_files(data)
    elif suffix == ".ipynb" or data.lstrip()[:1] == b"{":
        files = {PurePosixPath(filename or "handin.ipynb").name: data}
    else:
        raise BadHandin(f"{filename or 'the upload'} is neither a notebook (.ipynb) nor a hand-in zip: upload the "
                        "notebook you worked in, or the zip that `dlcourse handin` wrote")
    notebooks = {name: content for name, content in files.items() if name.lower().endswith(".ipynb")}
    if not notebooks:
        raise BadHandin(f"{filename or 'the upload'} holds no notebook (.ipynb): upload the notebook itself or the "
                        "zip that `dlcourse handin` wrote")
    for name, content in notebooks.items():
        _check_notebook(name, content)
    return files


def _check_notebook(name: str, content: bytes) -> None:
    try:
        node = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise BadHandin(f"{name} is not a notebook: it is not JSON ({type(error).__name__}). Open it in "
                        "JupyterLab, save it (Ctrl+S) and upload the .ipynb file again") from None
    if not isinstance(node, dict) or not isinstance(node.get("cells"), list) or "nbformat" not in node:
        raise BadHandin(f"{name} is JSON but not a notebook (no 'cells' and 'nbformat'): upload the .ipynb file "
                        "you worked in")


def _zip_files(data: bytes) -> dict[str, bytes]:
    try:
        bundle = zipfile.ZipFile(BytesIO(data))
    except zipfile.BadZipFile:
        raise BadHandin("the upload ends in .zip but is no readable zip: make it again with `dlcourse handin`") \
            from None
    with bundle:
        members = bundle.infolist()
        if len(members) > MAX_MEMBERS:
            raise BadHandin(f"the zip holds {len(members)} members (at most {MAX_MEMBERS}): upload the zip that "
                            "`dlcourse handin` wrote, or the notebooks themselves")
        total = 0
        files = {}
        for info in members:
            _check_member(info)
            total += info.file_size
            if total > MAX_UNPACKED_BYTES:
                raise BadHandin(f"the zip expands to more than {MAX_UNPACKED_BYTES // 2**20} MB: refused")
            path = PurePosixPath(info.filename)
            if info.is_dir() or any(p.startswith(".") or p == "__MACOSX" for p in path.parts):
                continue
            if path.suffix.lower() in KEPT_SUFFIXES:
                content = _read_bounded(bundle, info)
                if path.name in files:
                    raise BadHandin(f"the zip holds two files named {path.name}: keep one and upload again")
                files[path.name] = content
        return files


def _check_member(info: zipfile.ZipInfo) -> None:
    path = PurePosixPath(info.filename.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise BadHandin(f"the zip member {info.filename!r} points outside the zip's folder: refused")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise BadHandin(f"the zip member {info.filename!r} is a link: a hand-in holds files only")
    if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > 2**20:
        raise BadHandin(f"the zip member {info.filename!r} expands {info.file_size // max(info.compress_size, 1)} "
                        f"times (at most {MAX_RATIO}): refused as a zip bomb")


def _read_bounded(bundle: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The member's bytes, reading no more than its header declares (a lying header is a zip bomb too)."""
    try:
        with bundle.open(info) as member:
            content = member.read(info.file_size + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
        raise BadHandin(f"the zip member {info.filename!r} is damaged ({error}): make the zip again with "
                        "`dlcourse handin`, or upload the notebook itself") from None
    if len(content) > info.file_size:
        raise BadHandin(f"the zip member {info.filename!r} is larger than its header says: refused")
    return content
