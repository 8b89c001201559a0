"""The grader's temporary folders: a later run removes those whose maker has ended, and only those."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

from dlcourse.sandbox import scratch


def _ended_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _folder(root, prefix, tag):
    path = root / f"{prefix}{tag}-{random.randrange(16**8):08x}"
    path.mkdir()
    (path / "kernel.json").write_text("{}")  # not empty: rmtree, not rmdir
    return path


@pytest.mark.parametrize("prefix", scratch.PREFIXES)
def test_folders_of_ended_makers_are_removed_and_all_others_kept(tmp_path, prefix):
    namespace, me, start = scratch.owner_tag().split(".")
    ended = _ended_pid()
    parent = os.getppid()
    stale = [
        _folder(tmp_path, prefix, f"{namespace}.{ended}.{random.randrange(1, 10**9)}"),  # its maker has ended
        _folder(tmp_path, prefix, f"{namespace}.{me}.{int(start) + 1}"),  # its PID names another process now
    ]
    kept = [
        _folder(tmp_path, prefix, scratch.owner_tag()),  # this process's own
        _folder(tmp_path, prefix, scratch.owner_tag(parent)),  # a live process's
        _folder(tmp_path, prefix, f"{int(namespace) + 1}.{ended}.5"),  # another PID namespace: not ours to judge
        _folder(tmp_path, prefix, f"{namespace}.{ended}.0"),  # no start time known
    ]
    for name in (f"{prefix}abcdefgh", f"{prefix}{namespace}.{ended}", "dlx-" + scratch.owner_tag(ended) + "-ab",
                 f"other-{namespace}.{ended}.7-ab"):
        kept.append(tmp_path / name)
        kept[-1].mkdir()
    (tmp_path / f"{prefix}{namespace}.{ended}.9-file").write_text("a file, not a folder")
    removed = scratch.sweep([tmp_path])
    assert sorted(removed) == sorted(stale)
    assert not any(path.exists() for path in stale)
    assert all(path.is_dir() for path in kept)
    assert (tmp_path / f"{prefix}{namespace}.{ended}.9-file").is_file()


def test_make_dir_names_its_maker_so_it_is_kept_while_the_maker_runs_and_removed_after(tmp_path):
    made = subprocess.run([sys.executable, "-c", "import sys\nfrom dlcourse import scratch\n"
                           "print(scratch.make_dir('dlz-', dir=sys.argv[1]))\n"
                           "print(scratch.stale(scratch.make_dir('dlk-', dir=sys.argv[1])))", str(tmp_path)],
                          capture_output=True, text=True, check=True)
    first, alive_verdict = made.stdout.split()
    assert alive_verdict == "False", "a folder was judged stale while its maker ran"
    assert oct(os.stat(first).st_mode & 0o777) == "0o700"
    assert len(scratch.sweep([tmp_path])) == 2 and not list(tmp_path.iterdir()), "its maker has ended"
    mine = scratch.make_dir("dlcourse-work-", dir=tmp_path)
    assert scratch.sweep([tmp_path]) == [] and mine.is_dir()


def test_make_dir_refuses_another_prefix(tmp_path):
    with pytest.raises(ValueError):
        scratch.make_dir("dlx-", dir=tmp_path)
