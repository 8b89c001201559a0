"""``dlcourse report``: item analysis, failure messages, similarity and the HTML, on generated classes.

The class (tests/grader/report_class.py) is written in the stored-result
format without a kernel, so these tests take seconds: six independent
implementations, mutants, blanks, two disguised copies, a copy of the
reference, a timeout and a missing notebook, dealt by a seeded shuffle.
"""

from __future__ import annotations

import csv
import random
import re
import shutil
from itertools import combinations
from pathlib import Path

import pytest

from dlcourse.insight import similarity
from dlcourse.cli import main
from dlcourse.core.course import CourseLayout
from dlcourse.grading.results import CellGrade, NotebookResult, Status, SubmissionResult
from dlcourse.insight.report import SIMILARITY_NOTE, build_report, item_analysis, load_results, message_key
from report_class import (ASSIGNMENT, FUNCTIONS, REFERENCE, STYLES, change_comments, disguise, generate_class,
                          stub, store)

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test-output" / "report"
SEEDS = [0, 1, 2, 3]


@pytest.fixture(scope="module")
def classes(tmp_path_factory):
    made = {}
    for seed in SEEDS:
        generated = generate_class(tmp_path_factory.mktemp(f"class{seed}") / "course", seed)
        made[seed] = (generated, build_report(CourseLayout(generated.root), ASSIGNMENT))
    return made


@pytest.mark.parametrize("seed", SEEDS)
def test_report_flags_exactly_the_copied_pairs_and_no_independent_solution(classes, seed):
    generated, report = classes[seed]
    flagged = {frozenset((p.a, p.b)) for p in report.flagged_pairs}
    assert flagged == generated.copied_pairs
    independent_pairs = {frozenset(p) for p in combinations(generated.independent, 2)} - generated.copied_pairs
    compared = {frozenset((p.a, p.b)): p for p in report.pairs}
    assert independent_pairs <= set(compared), "every pair of independent solutions is compared"
    assert not any(compared[p].flagged for p in independent_pairs)


@pytest.mark.parametrize("seed", SEEDS)
def test_report_flags_only_the_reference_copy_as_close_to_the_reference(classes, seed):
    generated, report = classes[seed]
    assert {p.a for p in report.reference_pairs if p.flagged} == {generated.reference_copy}


@pytest.mark.parametrize("seed", SEEDS)
def test_blank_submissions_have_no_own_code_and_are_not_compared(classes, seed):
    generated, report = classes[seed]
    for blank in generated.blanks:
        assert report.codes[blank].size == 0
        assert not any(blank in (p.a, p.b) for p in report.pairs)


@pytest.mark.parametrize("seed", SEEDS)
def test_item_nobody_can_pass_and_item_everybody_passes_are_flagged_and_no_other(classes, seed):
    _, report = classes[seed]
    flagged = {flag: {i.grade_id for i in report.items if flag in i.flags} for flag in ("nobody scores",
                                                                                      "everybody full")}
    assert flagged == {"nobody scores": {"test_top_k_tuple"}, "everybody full": {"test_warmup"}}


@pytest.mark.parametrize("seed", SEEDS)
def test_shared_failure_message_is_flagged_where_the_failures_share_one_message(classes, seed):
    generated, report = classes[seed]
    items = {i.grade_id: i for i in report.items}
    assert {i.grade_id for i in report.items if "shared failure" in i.flags} == {"test_top_k_tuple", "test_histogram"}
    # styles 3-5 leave the maximum out of the histogram; so do the copies of their students
    leave_out = {s for s, style in generated.styles.items() if style in (3, 4, 5)}
    leave_out |= {s for pair in generated.copied_pairs if pair & leave_out for s in pair}
    key, count, example = items["test_histogram"].common_failures[0]
    assert count == len(leave_out) and "maximum in the last bin" in example


def test_missing_notebooks_count_in_the_statuses_but_not_in_the_items(classes):
    generated, report = classes[SEEDS[0]]
    missing = [r.student_id for r in report.results if r.status == Status.MISSING]
    assert len(missing) == 1
    assert all(missing[0] not in i.scores for i in report.items)
    assert "1 missing" in report.summary() and "1 timeout" in report.summary()


@pytest.mark.parametrize("seed", range(5))
def test_item_statistics_equal_their_definitions_on_random_scores(seed):
    numpy = pytest.importorskip("numpy")
    draw = random.Random(seed)
    maxima = {f"t{i}": float(draw.choice([1, 2, 3])) for i in range(4)}
    results = []
    for n in range(draw.randint(6, 15)):
        cells = [CellGrade("nb", g, "test", m, float(draw.randint(0, int(m))), "wrong") for g, m in maxima.items()]
        results.append(SubmissionResult(f"s{n}", "A", Status.OK, [NotebookResult("nb", Status.OK, cells)]))
    items = {i.grade_id: i for i in item_analysis(results)}
    table = numpy.array([[c.score for c in r.notebooks[0].cells] for r in results])
    for column, (grade_id, maximum) in enumerate(maxima.items()):
        item, scores = items[grade_id], table[:, column]
        assert item.mean == pytest.approx(scores.mean())
        assert item.full_share == pytest.approx((scores >= maximum).mean())
        rest = table.sum(axis=1) - scores
        if scores.std() > 0 and rest.std() > 0:
            assert item.discrimination == pytest.approx(numpy.corrcoef(scores, rest)[0, 1])
        else:
            assert item.discrimination is None


@pytest.mark.parametrize("seed", range(4))
def test_a_test_cell_that_raises_itself_is_flagged_as_a_test_error(seed):
    draw = random.Random(seed)
    broken = set(draw.sample([f"t{i}" for i in range(5)], 2))
    results = []
    for n in range(8):
        cells = [CellGrade("nb", g, "test", 1.0, 0.0 if g in broken or n % 2 else 1.0,
                           "the test could not run: NameError: name '_helper' is not defined" if g in broken and n % 3
                           else "wrong value") for g in (f"t{i}" for i in range(5))]
        results.append(SubmissionResult(f"s{n}", "A", Status.OK, [NotebookResult("nb", Status.OK, cells)]))
    flagged = {i.grade_id for i in item_analysis(results) if any(f.startswith("test error") for f in i.flags)}
    assert flagged == broken


@pytest.mark.parametrize("seed", range(5))
def test_failure_messages_that_differ_only_in_numbers_and_paths_group_together(seed):
    draw = random.Random(seed)
    template = "normalize(xs): max error {} at index {}; see {}"
    messages = [template.format(draw.uniform(0, 9), draw.randint(0, 99), f"/tmp/ipykernel_{draw.randint(1, 9)}/x.py")
                for _ in range(5)]
    assert len({message_key(m) for m in messages}) == 1
    assert message_key("top_k returned a list") != message_key("top_k returned a dict")


@pytest.mark.parametrize("style", range(len(STYLES)))
def test_similarity_ignores_renamed_variables_reordered_statements_and_comments(style):
    draw = random.Random(style)
    release = similarity.release_line_set(stub(f) for f in FUNCTIONS)
    for function, source in STYLES[style].items():
        original = similarity.fingerprints(similarity.statement_tokens(source, release))
        for changed in (disguise(source, draw), change_comments(source)):
            copy = similarity.fingerprints(similarity.statement_tokens(changed, release))
            weight = {h: 1.0 for h in set(original) | set(copy)}
            assert similarity.weighted_jaccard(original, copy, weight) >= 0.75, (function, changed)


def test_release_lines_are_not_the_students_code():
    release = similarity.release_line_set(stub(f) for f in FUNCTIONS)
    for function in FUNCTIONS:
        assert similarity.statement_tokens(stub(function), release) == []
        assert similarity.statement_tokens(REFERENCE[function], release), "the solution's own lines stay"


@pytest.mark.parametrize("seed", range(4))
def test_threshold_is_above_the_bulk_of_the_class_and_never_below_the_floor(seed):
    draw = random.Random(seed)
    scores = [draw.uniform(0, 0.2) for _ in range(60)]
    cut = similarity.threshold(scores)
    assert cut >= similarity.FLOOR and cut > max(scores)
    spread = [draw.uniform(0.3, 0.9) for _ in range(60)]
    assert similarity.threshold(spread) > sorted(spread)[len(spread) // 2]


def test_report_command_writes_one_self_contained_html_page(classes, capsys):
    generated, _ = classes[SEEDS[0]]
    assert main(["--course", str(generated.root), "report", ASSIGNMENT]) == 0
    printed = capsys.readouterr().out
    page = (generated.root / "reports" / ASSIGNMENT / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page), "no external resource"
    assert "<script" not in page
    assert len(re.findall(r'<img class="figure" [^>]*src="data:image/png;base64,', page)) >= 4
    assert SIMILARITY_NOTE in page
    for pair in generated.copied_pairs:
        a, b = sorted(pair)
        assert a in printed and b in printed
        assert page.count("<mark>") > 0


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_the_page_shows_names_flags_and_code_as_text_never_as_markup(classes, seed):
    import dataclasses

    from dlcourse.insight.report import render_html

    _, report = classes[seed]
    hostile = "<script>alert('x')</script>"
    items = [dataclasses.replace(report.items[0], flags=[*report.items[0].flags, hostile]), *report.items[1:]]
    page = render_html(dataclasses.replace(report, assignment=hostile, items=items))
    assert "<script" not in page
    assert page.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") >= 4  # title, heading, summary, flag
    for pair in report.flagged_pairs:  # each flagged pair is shown side by side, its common lines marked
        assert f"<h3>{pair.a} and {pair.b}: similarity {pair.score:.2f}" in page


def test_report_refuses_an_assignment_without_grades(classes, capsys):
    generated, _ = classes[SEEDS[0]]
    shutil.copytree(generated.root / "source" / ASSIGNMENT, generated.root / "source" / "ungraded")
    assert main(["--course", str(generated.root), "report", "ungraded"]) == 1
    assert "dlcourse grade ungraded" in capsys.readouterr().err
    assert main(["--course", str(generated.root), "report", "nosuch"]) == 1


def test_course_report_has_one_row_per_student_and_one_column_per_assignment(tmp_path):
    made = generate_class(tmp_path / "course", 7)
    shutil.copytree(made.root / "source" / ASSIGNMENT, made.root / "source" / "stats2")
    for n, student in enumerate(made.independent[:4]):
        store(made.root, student, STYLES[n], 7, assignment="stats2")
    layout = CourseLayout(made.root)
    assert main(["--course", str(made.root), "report", "--course"]) == 0
    with open(layout.reports / "course" / "scores.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    first = {r.student_id: r.score for r in load_results(layout, ASSIGNMENT)}
    second = {r.student_id: r.score for r in load_results(layout, "stats2")}
    assert set(rows) == set(first) | set(second)
    for student, row in rows.items():
        assert float(row[ASSIGNMENT]) == first.get(student, 0.0)
        assert float(row["stats2"]) == second.get(student, 0.0)
        assert float(row["total"]) == first.get(student, 0.0) + second.get(student, 0.0)
    page = (layout.reports / "course" / "report.html").read_text()
    assert "data:image/png;base64," in page and not re.search(r"(src|href)=\"https?:", page)


@pytest.mark.browser
def test_report_opens_offline_in_chromium_with_every_figure_rendered(classes):
    from playwright.sync_api import sync_playwright

    from dlcourse.student import pdf

    chromium = pdf.find_chromium()
    assert chromium, "no local Chromium: apt-get install chromium (scripts/setup.sh does)"
    generated, _ = classes[SEEDS[0]]
    assert main(["--course", str(generated.root), "report", ASSIGNMENT]) == 0
    page_path = generated.root / "reports" / ASSIGNMENT / "report.html"
    OUT.mkdir(parents=True, exist_ok=True)
    outside = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.route("**/*", lambda route: (outside.append(route.request.url), route.abort())
                       if not route.request.url.startswith(("file:", "data:")) else route.continue_())
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            widths = page.eval_on_selector_all("img.figure", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            page.screenshot(path=str(OUT / "stats-report.png"), full_page=True)
            marked = page.eval_on_selector_all("mark", "marks => marks.length")
        finally:
            browser.close()
    assert outside == [], "the page asked for something outside itself"
    assert len(widths) >= 4 and all(w > 0 for w in widths), widths
    assert marked > 0
