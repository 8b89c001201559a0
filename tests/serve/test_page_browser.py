"""The hand-in page in a real Chromium (Debian's, headless, offline; Playwright never downloads a browser).

A student opens the sign-in link the instructor sent, signs in, drops a
notebook, and sees it graded on the same page without reloading it by hand;
another student, signed in beside, does not see it. No request leaves the
service's origin. Screenshots land in ``test-output/serve-browser/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_helpers import Service, fresh_course, issue_tokens, new_database
from test_api import GOOD, notebook_bytes
from tiny_course import ASSIGNMENT, HIDDEN_MARKER

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test-output" / "serve-browser"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_a_student_hands_in_on_the_page_and_sees_the_result_and_another_student_does_not(
        tiny_template, tmp_path, request):
    from playwright.sync_api import sync_playwright

    from dlcourse.student.pdf import find_chromium

    chromium = find_chromium()
    assert chromium, "no local Chromium: apt-get install chromium (scripts/setup.sh does)"
    OUT.mkdir(parents=True, exist_ok=True)
    course = fresh_course(tiny_template, tmp_path / "course")
    state = tmp_path / "state"
    state.mkdir()
    database = new_database("sqlite", request, tmp_path)
    tokens = issue_tokens(course, database, state)
    notebook = tmp_path / "tiny.ipynb"
    notebook.write_bytes(notebook_bytes(tiny_template, GOOD, names="Carol Clark"))
    service = Service(course, database, state).start()
    elsewhere: list[str] = []
    errors: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
            context = browser.new_context(viewport={"width": 1200, "height": 800})
            context.set_default_timeout(60_000)
            context.on("request", lambda r: None if r.url.startswith(service.url) else elsewhere.append(r.url))
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{service.url}#token={tokens['carol']}")  # the sign-in link of `serve tokens --url`
            assert page.input_value("#token") == tokens["carol"]
            assert "token" not in page.url  # the script took it out of the address bar
            page.click("#signin button")
            assert page.inner_text("#who") == "Carol Clark"
            page.select_option("#assignment", ASSIGNMENT)
            page.set_input_files("#file", str(notebook))
            page.click("#send")
            page.wait_for_selector('#handins tr[data-state="graded"]', timeout=120_000)  # the page reloads itself
            row = page.inner_text("#handins tbody tr")
            assert page.eval_on_selector("h1", "e => getComputedStyle(e).fontSize") == "24px"  # page.css
            page.screenshot(path=str(OUT / "graded.png"), full_page=True)
            assert "3 / 3" in row and "(counts)" in row and "test_square: passed" in row
            assert HIDDEN_MARKER not in page.content()

            other = browser.new_context()
            other_page = other.new_page()
            other_page.goto(service.url)
            other_page.fill("#token", tokens["dave"])
            other_page.click("#signin button")
            assert other_page.inner_text("#who") == "Dave Dunn"
            assert other_page.locator("#handins tbody tr").count() == 0
            other_page.screenshot(path=str(OUT / "other-student.png"), full_page=True)
            browser.close()
    finally:
        service.stop()
    assert not elsewhere, f"the page loaded something from elsewhere: {elsewhere}"
    assert not errors, errors
