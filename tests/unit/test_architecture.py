"""The layering of dlcourse/ that docs/architecture.md describes: no import cycles, students' side apart."""

from __future__ import annotations

import ast
from pathlib import Path

from dlcourse.authoring.kit import STUDENT_MODULES, student_files

PACKAGE = Path(__file__).resolve().parents[2] / "dlcourse"

#: What a student's kit holds (the folders' rule, which `dlcourse student-kit` copies); none of it may reach the
#: grader's masters-only paths.
STUDENT_SIDE = set(STUDENT_MODULES)
GRADER_ONLY = {"dlcourse.grading", "dlcourse.sandbox", "dlcourse.authoring", "dlcourse.exam", "dlcourse.lms",
               "dlcourse.insight", "dlcourse.serve", "dlcourse.cli"}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _is_type_checking_block(node) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every dlcourse module ``name`` imports (also inside functions), with the packages Python imports first."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text())
    skipped = {id(n) for block in ast.walk(tree) if _is_type_checking_block(block) for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        targets = []
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                       for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        for target in targets:
            while target.startswith("dlcourse"):
                # Importing a.b.c imports package a.b first, unless a.b is this module's own package.
                if target in known and target != name and not name.startswith(target + "."):
                    found.add(target)
                target = target.rpartition(".")[0]
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, set(known)) - {"dlcourse"} for name, path in known.items()}


def test_no_module_imports_another_in_a_circle():
    graph = import_graph()
    cycles = []

    def visit(node, trail):
        for nxt in sorted(graph.get(node, ())):
            if nxt in trail:
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]))
            elif nxt not in done:
                visit(nxt, trail + [nxt])
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        if start not in done:
            visit(start, [start])
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles)))


def test_the_students_side_never_imports_the_graders():
    graph = import_graph()
    assert STUDENT_SIDE <= set(graph), STUDENT_SIDE - set(graph)
    for name in sorted(STUDENT_SIDE):
        reached, todo = set(), [name]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in reached:
                    reached.add(nxt)
                    todo.append(nxt)
        bad = {m for m in reached if any(m == g or m.startswith(g + ".") for g in GRADER_ONLY)}
        assert not bad, f"{name} reaches grader-only modules {sorted(bad)}"


def test_the_students_side_imports_only_itself_so_the_kits_copy_lacks_nothing():
    graph = import_graph()
    packages = {name.rsplit(".", i)[0] for name in STUDENT_SIDE for i in range(1, name.count(".") + 1)}
    for name in sorted(STUDENT_SIDE):
        outside = graph[name] - STUDENT_SIDE - packages
        assert not outside, f"{name} imports {sorted(outside)}, which a student kit does not ship: add it to " \
                            "dlcourse.authoring.kit.STUDENT_MODULES if students need it, else do not import it there"
    assert not STUDENT_SIDE & GRADER_ONLY


def test_the_kit_ships_exactly_the_student_modules_and_their_packages():
    shipped = {str(Path("dlcourse", path).with_suffix("")).replace("/", ".").removesuffix(".__init__")
               for path in student_files() if path.endswith(".py")}
    packages = {name.rsplit(".", i)[0] for name in STUDENT_SIDE for i in range(1, name.count(".") + 1)}
    assert shipped == STUDENT_SIDE | packages


def test_the_import_graph_sees_relative_and_lazy_imports():
    graph = import_graph()
    assert "dlcourse.bridge.wire" in graph["dlcourse.bridge.agent"]  # from . import wire
    assert "dlcourse.grading.gradebook" in graph["dlcourse.grading"]  # imported inside grade_and_report
    assert "dlcourse.grading.results" not in graph["dlcourse.grading.gradebook"]  # only under TYPE_CHECKING


def test_the_students_side_is_the_student_folders_and_the_notebook_modules():
    from dlcourse.authoring.kit import NOTEBOOK_MODULES, STUDENT_PACKAGES
    graph = import_graph()
    in_folders = {name for name in graph if any(name.startswith(package + ".") for package in STUDENT_PACKAGES)}
    assert STUDENT_SIDE == in_folders | set(NOTEBOOK_MODULES)
    assert {"dlcourse.student.handin", "dlcourse.bridge.errors", "dlcourse.core.course"} <= STUDENT_SIDE
    assert not any(name.startswith("dlcourse.sandbox") for name in STUDENT_SIDE)


def test_at_most_fifteen_modules_directly_in_the_package():
    top = [path.name for path in PACKAGE.glob("*.py")]
    assert len(top) <= 15, sorted(top)


def test_old_flat_import_paths_give_the_moved_module_itself():
    import importlib

    import dlcourse
    for old, new in dlcourse.MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
        assert importlib.import_module(new).__spec__.name == new


def test_the_packages_form_layers_no_package_imports_another_in_a_circle():
    def package(name):
        return name.split(".")[1] if name.count(".") else name

    graph = import_graph()
    edges: dict[str, set[str]] = {}
    for name, imported in graph.items():
        for other in imported:
            if package(name) != package(other):
                edges.setdefault(package(name), set()).add(package(other))

    def reaches(start, goal, seen=()):
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen + (nxt,)))
                   for nxt in edges.get(start, ()))

    circles = sorted(a for a in edges if reaches(a, a))
    assert not circles, {a: sorted(edges[a]) for a in circles}


def test_the_reference_training_loop_is_not_in_what_a_kit_ships():
    # replay_training is a correct training loop (an answer of A3, A4, A6): only hidden tests may import it
    graph = import_graph()
    assert "dlcourse.grading.model_checks" in graph
    assert "dlcourse.grading.model_checks" not in STUDENT_SIDE
    testing_source = (PACKAGE / "testing.py").read_text()
    assert "def replay_training" not in testing_source and "optimiser.step()" not in testing_source
