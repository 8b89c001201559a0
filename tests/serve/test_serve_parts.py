"""The service's parts without a service: unpacking uploads, the store's claims, which hand-in counts, what shows."""

from __future__ import annotations

import io
import json
import zipfile

import nbformat
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from serve_helpers import new_database

from dlcourse.serve.files import BadHandin, FileStore, handin_files
from dlcourse.serve.policy import ServePolicy, counting_handin, student_view
from dlcourse.serve.store import Handin, Store

NOTEBOOK = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])).encode()

names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
suffixes = st.sampled_from([".ipynb", ".pdf", ".txt", ".png", ".py"])


@settings(max_examples=60, deadline=None)
@given(files=st.dictionaries(st.tuples(st.sampled_from(["", "a1_x/", "a1_x/sub/"]), names, suffixes),
                             st.binary(max_size=200), min_size=1, max_size=12))
@example(files={("", "a", ".pdf"): b"", ("a1_x/", "a", ".pdf"): b""})
def test_a_hand_in_zip_keeps_exactly_its_notebooks_and_pdfs_by_base_name(files):
    members = {}
    for (folder, stem, suffix), content in files.items():
        members[f"{folder}{stem}{suffix}"] = NOTEBOOK if suffix == ".ipynb" else content
    expected = {}
    for path, content in members.items():
        base = path.rsplit("/", 1)[-1]
        if base.endswith((".ipynb", ".pdf")):
            expected.setdefault(base, []).append(content)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as bundle:
        for path, content in members.items():
            bundle.writestr(path, content)
    if any(len(contents) > 1 for contents in expected.values()):  # found while unpacking, before the notebooks
        with pytest.raises(BadHandin, match="two files named"):  # are counted (a.pdf twice, no notebook: this)
            handin_files("handin.zip", out.getvalue())
    elif not any(name.endswith(".ipynb") for name in expected):
        with pytest.raises(BadHandin, match="holds no notebook"):
            handin_files("handin.zip", out.getvalue())
    else:
        assert handin_files("handin.zip", out.getvalue()) == {name: c[0] for name, c in expected.items()}


def test_a_member_whose_header_lies_about_its_size_is_refused_as_damaged():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as bundle:
        bundle.writestr("a/tiny.ipynb", NOTEBOOK)
    data = out.getvalue()
    size = len(NOTEBOOK).to_bytes(4, "little")
    smaller = (len(NOTEBOOK) - 10).to_bytes(4, "little")
    central = data.rindex(b"PK\x01\x02")  # the central directory's uncompressed size (offset 24) lies
    forged = data[:central + 24] + smaller + data[central + 28:]
    assert data[central + 24:central + 28] == size
    with pytest.raises(BadHandin, match="is damaged"):
        handin_files("handin.zip", forged)


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=1, max_size=5000))
def test_a_stored_file_reads_back_the_same_and_identical_uploads_share_one_file(tmp_path_factory, data):
    store = FileStore(tmp_path_factory.mktemp("files"))
    first, second = store.put(data), store.put(data)
    assert first == second and store.get(first.sha256) == data
    assert len(list(store.objects.rglob("*"))) == 2  # its folder and one file; no temporary left


def _handin(handin_id: str, received: float, score: float | None, *, members=("alice",), late=False,
            state="graded", result=None) -> Handin:
    return Handin(handin_id, "tiny", members[0], list(members), "tiny.ipynb", "0" * 64, received, late, [], state,
                  1, 1 if state == "graded" else 0, score, 3.0, result, None)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 3), st.booleans(),
                          st.sampled_from(["graded", "queued", "failed"])), max_size=8))
def test_the_counting_hand_in_is_the_latest_or_best_finished_one_before_the_deadline(rows):
    handins = [_handin(f"h{i}", received, score, late=late, state=state)
               for i, (received, score, late, state) in enumerate(rows)]
    finished = [h for h in handins if h.state != "queued"]
    pool = [h for h in finished if not h.late] or finished
    latest, best = counting_handin(handins, "alice", "latest"), counting_handin(handins, "alice", "best")
    if not pool:
        assert latest is None and best is None
        return
    assert latest in pool and all(h.received <= latest.received for h in pool)
    assert best in pool and all((h.score or 0) <= (best.score or 0) for h in pool)
    assert counting_handin(handins, "bob", "latest") is None


def test_what_a_student_sees_follows_the_feedback_policy_and_holds_no_test_code():
    result = {"notebooks": [{"name": "tiny", "status": "ok", "message": "", "cells": [
        {"notebook": "tiny", "grade_id": "test_square", "kind": "test", "max_score": 2.0, "score": 0.0,
         "message": "square(x): expected x * x", "state": ""},
        {"notebook": "tiny", "grade_id": "why", "kind": "manual", "max_score": 1.0, "score": None, "message": "",
         "state": ""}]}]}
    handin = _handin("h1", 10.0, 0.0, result=result)
    items = student_view(handin, ServePolicy())
    assert items["score"] == 0.0 and items["items"] == [
        {"notebook": "tiny", "grade_id": "test_square", "score": 0.0, "max_score": 2.0, "result": "failed",
         "message": "square(x): expected x * x"}]
    score_only = student_view(handin, ServePolicy(feedback={"tiny": "score"}))
    assert score_only["score"] == 0.0 and score_only["items"] == []
    hidden = student_view(handin, ServePolicy(feedback={"tiny": "none"}, deadlines={"tiny": 1e12}), now=100.0)
    assert hidden["score"] is None and hidden["items"] == [] and "after the deadline" in hidden["message"]
    after = student_view(handin, ServePolicy(feedback={"tiny": "none"}, deadlines={"tiny": 50.0}), now=100.0)
    assert after["items"] and after["score"] == 0.0
    assert "source" not in json.dumps(items)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    store = Store(new_database(request.param, request, tmp_path))
    yield store
    store.close()


def test_a_claim_goes_to_one_owner_and_only_that_owner_writes_the_result_once(store):
    added = [store.add(assignment="tiny", uploader="alice", members=["alice"], filename="a.ipynb", sha256="0" * 64,
                       late=False, problems=[], received=float(i)) for i in range(3)]
    first = store.claim("one", 60)
    second = store.claim("two", 60)
    assert (first.id, second.id) == (added[0].id, added[1].id)  # oldest first, never the same twice
    assert not store.finish(first.id, "two", state="graded", score=1.0, max_score=1.0)  # not its claim
    assert store.finish(first.id, "one", state="graded", score=1.0, max_score=1.0)
    assert not store.finish(first.id, "one", state="graded", score=1.0, max_score=1.0)  # written once
    assert store.get(first.id).gradings == 1


def test_a_dead_owners_claim_is_queued_again_when_its_lease_runs_out_and_a_live_one_keeps_it(store):
    handin = store.add(assignment="tiny", uploader="bob", members=["bob", "carol"], filename="a.ipynb",
                       sha256="0" * 64, late=False, problems=[])
    store.claim("dead", -1)  # a lease already run out
    assert store.requeue() == 1 and store.get(handin.id).state == "queued"
    store.claim("live", -1)
    store.renew("live", 60)
    assert store.requeue() == 0 and store.get(handin.id).state == "grading"
    assert [h.id for h in store.of_student("carol")] == [handin.id] and store.of_student("car") == []
