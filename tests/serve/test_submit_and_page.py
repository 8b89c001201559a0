"""A student hands in with ``dlcourse handin --submit`` (the kit's command) and through the page (CSRF-protected)."""

from __future__ import annotations

import re
import subprocess

import pytest
import requests
from serve_helpers import Service, fresh_course, issue_tokens, new_database
from test_api import GOOD, notebook_bytes
from tiny_course import ASSIGNMENT, HIDDEN_MARKER, dlcourse_env, python

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tiny_template, tmp_path_factory, request):
    where = tmp_path_factory.mktemp("serve-student")
    course = fresh_course(tiny_template, where / "course")
    state = where / "state"
    state.mkdir()
    database = new_database("sqlite", request, where)
    tokens = issue_tokens(course, database, state)
    service = Service(course, database, state).start()
    yield service, tokens, course
    service.stop()


def test_handin_submit_uploads_the_zip_and_prints_the_result(served, tiny_template, tmp_path):
    service, tokens, _course = served
    folder = tmp_path / "work" / ASSIGNMENT  # the student's folder of notebooks, named after the assignment
    folder.mkdir(parents=True)
    (folder / "tiny.ipynb").write_bytes(notebook_bytes(tiny_template, GOOD, names="Alice Adams"))
    command = [python(), "-m", "dlcourse.student.cli", "handin", str(folder), "--no-tests", "--no-pdf",
               "--out-dir", str(tmp_path / "out"), "--submit", service.url, "--token", tokens["alice"]]
    run = subprocess.run(command, check=False, cwd=tmp_path, env=dlcourse_env(), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode in (0, 3), run.stdout + run.stderr  # 3: no PDF asked for
    assert "score: 3 / 3" in run.stdout and "graded" in run.stdout, run.stdout
    listing = service.get("api/v1/submissions", tokens["alice"]).json()["submissions"]
    assert listing[0]["filename"].endswith(".zip") and listing[0]["score"] == 3.0


def test_handin_submit_with_a_wrong_token_says_so_and_fails(served, tiny_template, tmp_path):
    service, _tokens, _course = served
    folder = tmp_path / ASSIGNMENT
    folder.mkdir()
    (folder / "tiny.ipynb").write_bytes(notebook_bytes(tiny_template, GOOD, names="Alice Adams"))
    command = [python(), "-m", "dlcourse.student.cli", "handin", str(folder), "--no-tests", "--no-pdf",
               "--out-dir", str(tmp_path / "out"), "--submit", service.url, "--token", "not-my-token"]
    run = subprocess.run(command, check=False, cwd=tmp_path, env=dlcourse_env(), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 1
    assert "401" in run.stderr and "token" in run.stderr and "The zip is written" in run.stderr


def _signed_in(service, token: str) -> requests.Session:
    session = requests.Session()
    page = session.get(service.url, timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    reply = session.post(f"{service.url}signin", data={"_xsrf": xsrf, "token": token}, timeout=30)
    assert reply.status_code == 200 and "Signed in as" in reply.text, reply.text
    return session


def test_the_page_signs_in_takes_an_upload_and_refuses_a_cross_site_form(served, tiny_template):
    service, tokens, _course = served
    session = _signed_in(service, tokens["bob"])
    page = session.get(service.url, timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    data = notebook_bytes(tiny_template, GOOD, names="Bob Brown")
    forged = session.post(f"{service.url}upload", data={"assignment": ASSIGNMENT},
                          files={"file": ("tiny.ipynb", data)}, timeout=30)  # a cross-site form has no _xsrf
    assert forged.status_code == 403
    assert service.get("api/v1/submissions", tokens["bob"]).json()["submissions"] == []
    reply = session.post(f"{service.url}upload", data={"assignment": ASSIGNMENT, "_xsrf": xsrf},
                         files={"file": ("tiny.ipynb", data)}, timeout=30)
    assert reply.status_code == 200 and "tiny" in reply.text
    handin_id = service.get("api/v1/submissions", tokens["bob"]).json()["submissions"][0]["id"]
    service.wait_finished(handin_id, tokens["bob"])
    page = session.get(service.url, timeout=30)
    assert "3 / 3" in page.text and HIDDEN_MARKER not in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert not re.search(r'(src|href)="(https?:)?//', page.text)  # nothing loaded from elsewhere


def test_a_wrong_token_on_the_page_is_refused_with_what_to_do(served):
    service, _tokens, _course = served
    session = requests.Session()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', session.get(service.url, timeout=30).text).group(1)
    reply = session.post(f"{service.url}signin", data={"_xsrf": xsrf, "token": "nope"}, timeout=30)
    assert reply.status_code == 401 and "copy it again" in reply.text
