"""Reference figures (source/make_reference_figures.py): every cell that draws from the student's code has
its figure beside it, small, committed and released, or a stated reason for having none; the script's
list matches the notebooks; its cells come and go with their PNGs. No test here trains anything: the one
that runs a kernel draws two figures of a tiny notebook."""

from __future__ import annotations

import ast
import importlib.util
import io
import random
import re
import shutil
import sys

import nbformat
import pytest

from dlcourse.core.course import CourseLayout
from dlcourse.core.notebook import grade_id, is_answer_cell, is_test_cell, nbgrader_meta
from helpers import RELEASE, ROOT, SOURCE, master_notebooks

_spec = importlib.util.spec_from_file_location("make_reference_figures", SOURCE / "make_reference_figures.py")
figures = sys.modules.setdefault("make_reference_figures", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(figures)

IMAGE = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _notebook(path):
    return nbformat.read(str(path), as_version=4)


def _key(master) -> str:
    return f"{master.parent.name}/{master.stem}"


def _names(tree) -> tuple[set[str], set[str]]:
    """(names a cell binds at its top level: defs, classes, assignments, loop targets; names it reads)."""
    bound, used = set(), set()
    for statement in tree.body:
        definition = isinstance(statement, (ast.FunctionDef, ast.ClassDef))
        if definition:
            bound.add(statement.name)
        for node in ast.walk(statement):
            if isinstance(node, ast.Name):
                (bound if isinstance(node.ctx, ast.Store) and not definition else used).add(node.id)
    return bound, used


def _draws(tree) -> bool:
    """The cell shows a figure: plt.show(), or a top-level call of a plot_* / draw_* function."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
            if name == "show" or name.startswith(("plot_", "draw_")):
                return True
    return False


def student_figure_cells(master) -> list[str]:
    """grade_ids of the given code cells that draw a figure from what the student's code computes: they read a
    name an answer cell defines, or one bound by a cell that did (followed through the notebook)."""
    from_student: set[str] = set()
    found = []
    for cell in _notebook(master).cells:
        if cell.cell_type != "code" or is_test_cell(cell):
            continue
        tree = ast.parse(cell.source)
        bound, used = _names(tree)
        if is_answer_cell(cell):
            from_student |= bound
        elif used & from_student:
            from_student |= bound
            if _draws(tree):
                found.append(grade_id(cell))
    return found


# --------------------------------------------------------------------------
# The list matches the notebooks


@pytest.mark.parametrize("master", master_notebooks(), ids=lambda p: p.stem)
def test_every_cell_drawing_from_student_code_has_a_reference_figure_or_a_reason(master):
    listed = {f.cell for f in figures.FIGURES if f.notebook == _key(master)}
    excused = {cell for notebook, cell in figures.NO_REFERENCE if notebook == _key(master)}
    assert not listed & excused
    assert set(student_figure_cells(master)) == listed | excused


def test_the_detector_finds_figures_of_student_code_and_only_those(tmp_path):
    notebook = nbformat.v4.new_notebook()

    def cell(source, **meta):
        c = nbformat.v4.new_code_cell(source)
        c.metadata["nbgrader"] = {"grade_id": meta.pop("id"), **meta}
        notebook.cells.append(c)

    cell("def f(x):\n    return 2 * x", id="answer", solution=True)
    cell("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()", id="given_only", locked=True)
    cell("ys = [f(x) for x in range(3)]", id="compute", locked=True)
    cell("plt.plot(ys)\nplt.show()", id="derived", locked=True)
    cell("plot_history(f)", id="plot_call", locked=True)
    cell("assert f(1) == 2\nplt.show()", id="test", grade=True, points=1)
    cell("print(ys)", id="no_figure", locked=True)
    path = tmp_path / "figure-detector.ipynb"
    nbformat.write(notebook, str(path))
    assert student_figure_cells(path) == ["derived", "plot_call"]


def test_the_figures_list_names_real_cells_unique_pngs_and_known_data_sets():
    pngs = [path for f in figures.FIGURES for path in f.paths()]
    assert len(pngs) == len(set(pngs))
    for figure in figures.FIGURES:
        assert figure.master.is_file(), figure.notebook
        assert figure.cell in {grade_id(c) for c in _notebook(figure.master).cells}
        assert figure.data in (None, "mnist", "cifar10") and figure.alt


# --------------------------------------------------------------------------
# Beside each exercise, small, released


@pytest.mark.parametrize("master", master_notebooks(), ids=lambda p: p.stem)
def test_each_reference_cell_follows_its_figure_cell_and_shows_existing_small_pngs(master):
    cells = _notebook(master).cells
    ids = [grade_id(c) for c in cells]
    for figure in (f for f in figures.FIGURES if f.notebook == _key(master)):
        made = [p.is_file() for p in figure.paths()]
        if figure.data is None:
            assert all(made), f"{figure.cell}: run python source/make_reference_figures.py {figure.assignment}"
        if not all(made):  # a data set's figure not made here: no cell that shows a missing image
            assert figure.reference_id not in ids
            continue
        at = ids.index(figure.cell)
        reference = cells[at + 1]
        assert grade_id(reference) == figure.reference_id and reference.cell_type == "markdown"
        assert nbgrader_meta(reference)["locked"] and not nbgrader_meta(reference)["grade"]
        assert figures.CAPTION in reference.source
        assert [master.parent / path for path in IMAGE.findall(reference.source)] == figure.paths()
        for path in figure.paths():
            data = path.read_bytes()
            assert data.startswith(PNG_SIGNATURE) and len(data) <= figures.MAX_BYTES, path
    shown = [grade_id(c) for c in cells if c.cell_type == "markdown" and IMAGE.search(c.source)]
    assert set(shown) <= {f.reference_id for f in figures.FIGURES}, "an image cell the script does not know"


def test_no_png_is_left_without_its_figure():
    listed = {path for f in figures.FIGURES for path in f.paths()}
    assert set(SOURCE.glob(f"*/{figures.FIGURES_FOLDER}/*")) <= listed


@pytest.mark.parametrize("master", master_notebooks(), ids=lambda p: p.stem)
def test_the_release_carries_each_reference_cell_and_png(master):
    released = _notebook(RELEASE / master.parent.name / master.name)
    ids = [grade_id(c) for c in released.cells]
    for figure in (f for f in figures.FIGURES if f.notebook == _key(master)):
        if figure.reference_id not in {grade_id(c) for c in _notebook(master).cells}:
            continue
        assert ids.index(figure.reference_id) == ids.index(figure.cell) + 1
        for path in figure.paths():
            copy = RELEASE / path.relative_to(SOURCE)
            assert copy.read_bytes() == path.read_bytes(), f"{copy} is not {path}: run dlcourse release"


def test_the_student_kit_copies_the_released_figures(tmp_path):
    from dlcourse.authoring.kit import _write_release

    _write_release(CourseLayout(ROOT), tmp_path / "release", regenerate=False)
    for path in (p for f in figures.FIGURES for p in f.paths() if p.is_file()):
        assert (tmp_path / "release" / path.relative_to(SOURCE)).read_bytes() == path.read_bytes()


# --------------------------------------------------------------------------
# The script's parts


def _scratch_source(tmp_path):
    """A copy of the masters that have reference cells, with their PNGs."""
    source = tmp_path / "source"
    for master in {f.master for f in figures.FIGURES}:
        shutil.copytree(master.parent, source / master.parent.name, dirs_exist_ok=True)
    return source


@pytest.mark.parametrize("seed", range(4))
def test_reference_cells_are_exactly_those_whose_pngs_exist_and_placing_twice_changes_nothing(tmp_path, seed):
    source = _scratch_source(tmp_path)
    made = [f for f in figures.FIGURES if all(p.is_file() for p in f.paths(source))]
    removed = random.Random(seed).sample(made, k=random.Random(seed).randint(1, len(made)))
    for figure in removed:
        for path in figure.paths(source):
            path.unlink()
    by_master = {}
    for figure in figures.FIGURES:
        by_master.setdefault(figure.master, []).append(figure)
    for master, listed in by_master.items():
        copy = source / master.relative_to(SOURCE)
        figures.place_reference_cells(copy, listed, source)
        assert not figures.place_reference_cells(copy, listed, source)
        ids = [grade_id(c) for c in _notebook(copy).cells]
        for figure in listed:
            assert (figure.reference_id in ids) == (figure in made and figure not in removed)
        others = [grade_id(c) for c in _notebook(master).cells if not (grade_id(c) or "").endswith("_reference")]
        assert [i for i in ids if not (i or "").endswith("_reference")] == others  # nothing else moved or changed


@pytest.mark.parametrize("seed", range(3))
def test_small_png_keeps_the_picture_size_and_shrinks_it(seed):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    draws = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(draws.uniform(2, 8), draws.uniform(2, 5)))
    for _ in range(draws.integers(1, 5)):
        ax.plot(draws.normal(size=50).cumsum())
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    from PIL import Image

    small = figures.small_png(buffer.getvalue())
    assert small.startswith(PNG_SIGNATURE) and len(small) < len(buffer.getvalue())
    assert Image.open(io.BytesIO(small)).size == Image.open(io.BytesIO(buffer.getvalue())).size


@pytest.mark.slow
def test_render_runs_the_solutions_skips_the_tests_and_returns_each_shown_figure(tmp_path):
    notebook = nbformat.v4.new_notebook()
    sources = [("setup", {}, "import matplotlib.pyplot as plt"),
               ("answer", {"solution": True}, "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"),
               ("test", {"grade": True, "points": 1}, "raise AssertionError('tests are not run')"),
               ("other", {}, "plt.plot([0, 1]); plt.show()"),
               ("two", {}, "plt.plot([f(1), f(2)]); plt.show()\nfig, ax = plt.subplots(); ax.bar([0], [f(3)])")]
    for gid, meta, source in sources:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["nbgrader"] = {"grade_id": gid, "grade": False, "solution": False, "locked": True, **meta}
        notebook.cells.append(cell)
    master = tmp_path / "tiny" / "tiny.ipynb"
    master.parent.mkdir()
    nbformat.write(notebook, str(master))
    figure = figures.Figure("tiny/tiny", "two", ("line", "bars"), alt="two figures")
    rendered = figures.render(master, [figure])
    assert list(rendered) == ["two"] and len(rendered["two"]) == 2
    assert all(png.startswith(PNG_SIGNATURE) for png in rendered["two"])
    assert rendered["two"][0] != rendered["two"][1]


def test_a_data_sets_figures_wait_for_the_real_files_where_the_notebooks_load_them(tmp_path, monkeypatch):
    from stand_in_data import write_cifar10

    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path / "nothing"))
    assert figures.data_available(None)
    assert not figures.data_available("mnist") and not figures.data_available("cifar10")
    write_cifar10(tmp_path / "data", n_train=20, n_test=10)
    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path / "data"))
    assert figures.data_available("cifar10") and not figures.data_available("mnist")


def test_the_feedback_page_embeds_the_reference_figures_it_shows(tmp_path):
    import base64

    from dlcourse.insight.feedback import render_html

    shown = [f for f in figures.FIGURES if all(p.is_file() for p in f.paths())]
    for assignment in sorted({f.assignment for f in shown}):
        theirs = [f for f in shown if f.assignment == assignment]
        node = nbformat.v4.new_notebook(cells=[figures.reference_cell(f) for f in theirs]
                                        + [nbformat.v4.new_markdown_cell("![gone](figures/no_such_figure.png)")])
        page = render_html(node, tmp_path, RELEASE / assignment)
        for path in (p for f in theirs for p in f.paths()):
            assert f"data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}" in page, path
        assert 'src="figures/no_such_figure.png"' in page
