"""``dlcourse serve`` through its API, on SQLite and on PostgreSQL (one service process per database).

Hand-ins of the tiny course (tests/grader/tiny_course.py) are graded on
arrival; each test uses its own students so the tests do not depend on
their order.
"""

from __future__ import annotations

import io
import time
import zipfile

import nbformat
import pytest
from serve_helpers import Service, fresh_course, issue_tokens, new_database
from tiny_course import ASSIGNMENT, GOOD_CUBE, GOOD_SQUARE, HIDDEN_MARKER, WRONG_SQUARE

pytestmark = pytest.mark.slow
UPLOADS_PER_MINUTE = 4


def notebook_bytes(template, answers: dict[str, str], names: str | None = None) -> bytes:
    """The release notebook with ``answers`` and, when given, a names cell."""
    from dlcourse.student.names import names_cell

    notebook = template.released_notebook()
    for cell in notebook.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    if names is not None:
        cell = names_cell()
        cell.source = f'NAMES = "{names}"'
        notebook.cells.insert(0, cell)
    return nbformat.writes(notebook).encode()


GOOD = {"square": GOOD_SQUARE, "cube": GOOD_CUBE}


@pytest.fixture(scope="module")
def served(database_kind, tiny_template, tmp_path_factory, request):
    """(service, tokens, course) on a fresh course and database of ``database_kind``."""
    where = tmp_path_factory.mktemp(f"serve-{database_kind}")
    course = fresh_course(tiny_template, where / "course")
    state = where / "state"
    state.mkdir()
    database = new_database(database_kind, request, where)
    tokens = issue_tokens(course, database, state)
    service = Service(course, database, state, "--max-upload-mb", "1",
                      "--uploads-per-minute", str(UPLOADS_PER_MINUTE)).start()
    yield service, tokens, course
    service.stop()


def test_a_good_hand_in_is_graded_at_once_with_full_marks_and_published_for_the_instructor(served, tiny_template):
    service, tokens, course = served
    reply = service.submit(tokens["alice"], notebook_bytes(tiny_template, GOOD))
    assert reply.status_code == 201, reply.text
    assert reply.json()["state"] in ("queued", "grading")
    view = service.wait_finished(reply.json()["id"], tokens["alice"])
    assert (view["state"], view["score"], view["max_score"], view["counts"]) == ("graded", 3.0, 3.0, True)
    assert {item["grade_id"]: item["result"] for item in view["items"]} == {"test_square": "passed",
                                                                            "test_cube": "passed"}
    # Publishing for the instructor runs on its own thread after the result is recorded (coalesced under load):
    # wait for it, a bounded while.
    published = course.root / "autograded" / "alice" / ASSIGNMENT / ".dlcourse-result.json"
    deadline = time.monotonic() + 60
    while not published.is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (course.root / "submitted" / "alice" / ASSIGNMENT / "tiny.ipynb").is_file()
    assert course.result("alice")["fingerprint"]  # stored as dlcourse grade stores it


def test_a_wrong_answer_fails_its_item_with_its_message_and_never_shows_a_hidden_test(served, tiny_template):
    service, tokens, _course = served
    reply = service.submit(tokens["bob"], notebook_bytes(tiny_template, {"square": WRONG_SQUARE, "cube": GOOD_CUBE}))
    view = service.wait_finished(reply.json()["id"], tokens["bob"])
    items = {item["grade_id"]: item for item in view["items"]}
    assert (view["score"], items["test_square"]["result"], items["test_cube"]["result"]) == (1.0, "failed", "passed")
    assert "square" in items["test_square"]["message"]
    listing = service.get("api/v1/submissions", tokens["bob"]).text
    assert HIDDEN_MARKER not in listing and "BEGIN HIDDEN" not in listing


def test_another_student_reads_nothing_of_a_hand_in_and_a_missing_or_forged_token_gets_401(served, tiny_template):
    service, tokens, _course = served
    handin_id = service.submit(tokens["carol"], notebook_bytes(tiny_template, GOOD)).json()["id"]
    assert service.get(f"api/v1/submissions/{handin_id}", tokens["dave"]).status_code == 404
    assert handin_id not in service.get("api/v1/submissions", tokens["dave"]).text
    assert service.get(f"api/v1/submissions/{handin_id}", None).status_code == 401
    assert service.get(f"api/v1/submissions/{handin_id}", tokens["carol"][:-2] + "xx").status_code == 401
    assert service.submit("forged-token", notebook_bytes(tiny_template, GOOD)).status_code == 401
    assert service.submit(None, notebook_bytes(tiny_template, GOOD)).status_code == 401
    assert service.get(f"api/v1/submissions/{handin_id}", tokens["carol"]).status_code == 200


def test_both_members_of_a_group_see_its_hand_in_and_groups_csv_lists_them(served, tiny_template):
    service, tokens, course = served
    data = notebook_bytes(tiny_template, GOOD, names="Dave Dunn, Erin Evans")
    view = service.wait_finished(service.submit(tokens["erin"], data).json()["id"], tokens["erin"])
    assert view["members"] == ["dave", "erin"] and view["state"] == "graded"
    assert service.get(f"api/v1/submissions/{view['id']}", tokens["dave"]).json()["score"] == 3.0
    assert service.get(f"api/v1/submissions/{view['id']}", tokens["alice"]).status_code == 404
    groups = (course.root / "reports" / ASSIGNMENT / "groups.csv").read_text()
    assert "dave+erin,dave,dave" in groups and "dave+erin,erin,dave" in groups


def test_a_hand_in_that_does_not_name_the_uploader_is_refused_with_what_to_write(served, tiny_template):
    service, tokens, _course = served
    reply = service.submit(tokens["carol"], notebook_bytes(tiny_template, GOOD, names="Bob Brown"))
    assert reply.status_code == 400
    assert "Bob Brown" in reply.json()["error"] and "your own name" in reply.json()["error"]


def test_an_unknown_assignment_gets_404_listing_the_existing_ones(served, tiny_template):
    service, tokens, _course = served
    reply = service.submit(tokens["alice"], notebook_bytes(tiny_template, GOOD), assignment="tinny")
    assert reply.status_code == 404
    assert "tiny" in reply.json()["error"] and "did you mean" in reply.json()["error"]


@pytest.mark.parametrize("filename, data, expected", [
    ("notes.txt", b"my answers are 4 and 8", "neither a notebook"),
    ("tiny.ipynb", b"{not json", "not JSON"),
    ("tiny.ipynb", b'{"hello": 1}', "not a notebook"),
    ("handin.zip", b"PK\x03\x04 truncated", "no readable zip"),
])
def test_a_file_that_is_no_notebook_gets_400_naming_the_problem(served, filename, data, expected):
    service, tokens, _course = served
    reply = service.submit(tokens["alice"], data, filename=filename)
    assert reply.status_code == 400 and expected in reply.json()["error"], reply.text


def _zip(members: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, content in members.items():
            bundle.writestr(name, content)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            bundle.writestr(info, "/etc/passwd")
    return out.getvalue()


def test_unsafe_zips_are_refused_and_a_hand_in_zip_is_graded(served, tiny_template):
    service, tokens, _course = served
    good = notebook_bytes(tiny_template, GOOD)
    refused = {
        "points outside": _zip({"a1/tiny.ipynb": good, "../../evil.ipynb": good}),
        "is a link": _zip({"a1/tiny.ipynb": good}, links=("a1/data.ipynb",)),
        "members": _zip({f"a1/f{i}.txt": b"x" for i in range(100)} | {"a1/tiny.ipynb": good}),
        "zip bomb": _zip({"a1/tiny.ipynb": good, "a1/big.pdf": b"\0" * (20 * 2**20)}),
    }
    for expected, data in refused.items():
        reply = service.submit(tokens["alice"], data, filename="handin.zip")
        assert reply.status_code == 400 and expected in reply.json()["error"], (expected, reply.text)
    reply = service.submit(tokens["alice"], _zip({"tiny_alice/tiny.ipynb": good, "tiny_alice/HANDIN.txt": b"x"}),
                           filename="tiny_alice.zip")
    assert reply.status_code == 201, reply.text
    assert service.wait_finished(reply.json()["id"], tokens["alice"])["score"] == 3.0


def test_an_upload_over_the_limit_gets_413(served, tiny_template):
    service, tokens, _course = served
    padded = tiny_template.released_notebook()
    padded.metadata["padding"] = "x" * (3 * 2**20 // 2)  # 1.5 MB, over --max-upload-mb 1
    reply = service.submit(tokens["alice"], nbformat.writes(padded).encode())
    assert reply.status_code == 413 and "over the limit" in reply.json()["error"]


def test_a_token_that_hands_in_too_often_is_slowed_with_429(served, tiny_template):
    service, tokens, _course = served
    data = notebook_bytes(tiny_template, GOOD)
    codes = [service.submit(tokens["erin"], data).status_code for _ in range(UPLOADS_PER_MINUTE + 1)]
    assert codes.count(429) >= 1 and codes[0] in (201, 429)
    last = service.submit(tokens["erin"], data)
    assert last.status_code == 429 and last.headers["Retry-After"] == "60" and "wait a minute" in last.json()["error"]
