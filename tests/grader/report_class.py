"""A generated class for ``dlcourse report``, written in the stored-result format without a kernel.

The made-up assignment ``stats`` asks for four small functions (``normalize``,
``moving_average``, ``top_k``, ``histogram``) and a written answer; it has a
warm-up test the release's own cell passes (an item everybody passes) and a
test nobody can pass (it wants a tuple where the text asks for a list).
Six genuinely different implementations of each function (:data:`STYLES`)
are dealt to six students by a seeded shuffle; styles 3-5 read the
histogram's text the same wrong way (the maximum left out), style 4's
``normalize`` and style 5's ``moving_average`` are wrong (mutants). Then:
two blanks, two copies of two students (variables renamed at random,
independent statements reordered, comments added), one copy of the
reference with its comments changed, a notebook that timed out and a
missing one.

Scores are not written by hand: each student's functions are run here, in
this process, by the same checks the test cells describe
(:func:`grade_answers`), and the results are stored as
``SubmissionResult.to_json`` beside the graded notebook, as ``dlcourse
grade`` stores them.
"""

from __future__ import annotations

import ast
import io
import json
import random
import re
import shutil
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from tiny_course import REPOSITORY

ASSIGNMENT = "stats"
NOTEBOOK = "stats"
FUNCTIONS = ("normalize", "moving_average", "top_k", "histogram")
SIGNATURES = {"normalize": "xs", "moving_average": "xs, w", "top_k": "xs, k", "histogram": "xs, bins"}
POINTS = {"test_warmup": 1, "test_normalize": 2, "test_moving_average": 2, "test_top_k": 2, "test_top_k_tuple": 1,
          "test_histogram": 2}

REFERENCE = {
    "normalize": """
def normalize(xs):
    # centre, then scale by the population standard deviation
    mean = sum(xs) / len(xs)
    std = (sum((x - mean) ** 2 for x in xs) / len(xs)) ** 0.5
    return [(x - mean) / std for x in xs]
""",
    "moving_average": """
def moving_average(xs, w):
    # one mean per full window
    return [sum(xs[i:i + w]) / w for i in range(len(xs) - w + 1)]
""",
    "top_k": """
def top_k(xs, k):
    # sorted is stable: ties keep the lower index first
    ranked = sorted(enumerate(xs), key=lambda pair: -pair[1])
    return [index for index, _ in ranked[:k]]
""",
    "histogram": """
def histogram(xs, bins):
    lo, hi = min(xs), max(xs)
    width = (hi - lo) / bins
    counts = [0] * bins
    for x in xs:
        counts[min(int((x - lo) / width), bins - 1)] += 1  # the maximum goes in the last bin
    return counts
""",
}

STYLES = [
    {  # 0
        "normalize": """
def normalize(xs):
    total = sum(xs)
    n = len(xs)
    centre = total / n
    spread = 0.0
    for x in xs:
        spread = spread + (x - centre) ** 2
    spread = (spread / n) ** 0.5
    return [(x - centre) / spread for x in xs]
""",
        "moving_average": """
def moving_average(xs, w):
    out = []
    total = sum(xs[:w])
    out.append(total / w)
    for i in range(w, len(xs)):
        total += xs[i] - xs[i - w]
        out.append(total / w)
    return out
""",
        "top_k": """
def top_k(xs, k):
    chosen = []
    remaining = list(range(len(xs)))
    while len(chosen) < k:
        best = remaining[0]
        for i in remaining:
            if xs[i] > xs[best]:
                best = i
        chosen.append(best)
        remaining.remove(best)
    return chosen
""",
        "histogram": """
def histogram(xs, bins):
    counts = [0] * bins
    lo, hi = min(xs), max(xs)
    step = (hi - lo) / bins
    for x in xs:
        b = int((x - lo) / step)
        if b == bins:
            b = bins - 1
        counts[b] += 1
    return counts
""",
    },
    {  # 1
        "normalize": """
def normalize(values):
    import math
    count = 0
    acc = 0.0
    for v in values:
        count += 1
        acc += v
    mu = acc / count
    sq = 0.0
    for v in values:
        sq += (v - mu) * (v - mu)
    sigma = math.sqrt(sq / count)
    out = []
    for v in values:
        out.append((v - mu) / sigma)
    return out
""",
        "moving_average": """
def moving_average(values, width):
    result = []
    starts = len(values) - width + 1
    for start in range(starts):
        window = values[start:start + width]
        result.append(sum(window) / width)
    return result
""",
        "top_k": """
def top_k(values, k):
    positions = range(len(values))
    best_first = sorted(positions, key=lambda i: (-values[i], i))
    return list(best_first[:k])
""",
        "histogram": """
def histogram(values, n):
    low = min(values)
    high = max(values)
    edges = [low + (high - low) * j / n for j in range(n + 1)]
    out = [0 for _ in range(n)]
    for v in values:
        for j in range(n):
            if edges[j] <= v < edges[j + 1] or (j == n - 1 and v == high):
                out[j] += 1
                break
    return out
""",
    },
    {  # 2
        "normalize": """
def normalize(xs):
    import statistics
    m = statistics.fmean(xs)
    s = statistics.pstdev(xs)
    return list(map(lambda x: (x - m) / s, xs))
""",
        "moving_average": """
def moving_average(xs, w):
    import itertools
    prefix = [0.0] + list(itertools.accumulate(xs))
    return [(prefix[i + w] - prefix[i]) / w for i in range(len(xs) - w + 1)]
""",
        "top_k": """
def top_k(xs, k):
    import heapq
    return heapq.nlargest(k, range(len(xs)), key=lambda i: (xs[i], -i))
""",
        "histogram": """
def histogram(xs, bins):
    import bisect
    lo = min(xs)
    span = max(xs) - lo
    edges = [lo + span * i / bins for i in range(1, bins)]
    counts = [0] * bins
    for x in xs:
        counts[bisect.bisect_right(edges, x)] += 1
    return counts
""",
    },
    {  # 3
        "normalize": """
def normalize(data):
    mean_sq = sum(d * d for d in data) / len(data)
    mean = sum(data) / len(data)
    spread = (mean_sq - mean * mean) ** 0.5
    result = [0.0] * len(data)
    for i, d in enumerate(data):
        result[i] = (d - mean) / spread
    return result
""",
        "moving_average": """
def moving_average(data, size):
    averages = []
    i = 0
    while i + size <= len(data):
        s = 0.0
        for j in range(i, i + size):
            s += data[j]
        averages.append(s / size)
        i += 1
    return averages
""",
        "top_k": """
def top_k(data, k):
    pairs = list(enumerate(data))
    pairs.sort(key=lambda p: p[1], reverse=True)
    picked = []
    for idx, _ in pairs[:k]:
        picked.append(idx)
    return picked
""",
        "histogram": """
def histogram(data, nbins):
    smallest = min(data)
    step = (max(data) - smallest) / nbins
    tally = {}
    for d in data:
        slot = int((d - smallest) // step)
        tally[slot] = tally.get(slot, 0) + 1
    return [tally.get(s, 0) for s in range(nbins)]
""",
    },
    {  # 4: normalize divides by n - 1 (a mutant)
        "normalize": """
def normalize(xs):
    k = len(xs)
    avg = sum(xs) / k
    dev = (sum([(x - avg) ** 2 for x in xs]) / (k - 1)) ** 0.5
    return [(x - avg) / dev for x in xs]
""",
        "moving_average": """
def moving_average(xs, w):
    from collections import deque
    window = deque(maxlen=w)
    means = []
    for x in xs:
        window.append(x)
        if len(window) == w:
            means.append(sum(window) / w)
    return means
""",
        "top_k": """
def top_k(xs, k):
    ranked = []
    for i, x in enumerate(xs):
        pos = 0
        while pos < len(ranked) and xs[ranked[pos]] >= x:
            pos += 1
        ranked.insert(pos, i)
    return ranked[:k]
""",
        "histogram": """
def histogram(xs, bins):
    from collections import Counter
    start = min(xs)
    w = (max(xs) - start) / bins
    c = Counter(int((x - start) / w) for x in xs)
    return [c[i] for i in range(bins)]
""",
    },
    {  # 5: moving_average misses the last window (a mutant)
        "normalize": """
def normalize(xs):
    from math import fsum, sqrt
    mid = fsum(xs) / len(xs)
    centred = [x - mid for x in xs]
    scale = sqrt(fsum(c ** 2 for c in centred) / len(centred))
    return [c / scale for c in centred]
""",
        "moving_average": """
def moving_average(xs, w):
    res = []
    for end in range(w, len(xs)):
        res.append(sum(xs[end - w:end]) / w)
    return res
""",
        "top_k": """
def top_k(xs, k):
    idx = list(range(len(xs)))
    for a in range(len(idx)):
        for b in range(len(idx) - 1 - a):
            if xs[idx[b]] < xs[idx[b + 1]]:
                idx[b], idx[b + 1] = idx[b + 1], idx[b]
    return idx[:k]
""",
        "histogram": """
def histogram(xs, bins):
    res = []
    a = min(xs)
    d = (max(xs) - a) / bins
    for i in range(bins):
        res.append(len([x for x in xs if a + i * d <= x < a + (i + 1) * d]))
    return res
""",
    },
]

#: The notebook that timed out wrote this (and would have looped on, later).
SLOW_NORMALIZE = """
def normalize(xs):
    import numpy
    arr = numpy.asarray(xs, dtype=float)
    return list((arr - arr.mean()) / arr.std())
"""

_WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta", "lam", "zeta", "foo", "bar",
          "tmp", "val", "acc", "item", "thing", "data2", "num", "res2", "q", "z", "arr", "lst"]


def stub(function: str) -> str:
    return f"def {function}({SIGNATURES[function]}):\n    # YOUR CODE HERE\n    raise NotImplementedError()"


def master_cells():
    from dlcourse.authoring import answer, code, md, tests, written

    cells = [md("# Stats\n\nFour small functions on lists of numbers."), code("DATA = [3, 1, 4, 1, 5]")]
    cells.append(tests("test_warmup", POINTS["test_warmup"], "assert len(DATA) == 5"))
    for function in FUNCTIONS:
        body = REFERENCE[function].strip("\n").split("\n")
        source = "\n".join([body[0], "    ### BEGIN SOLUTION", *body[1:], "    ### END SOLUTION"])
        cells += [md(f"Write `{function}`."), answer(function, source),
                  tests(f"test_{function}", POINTS[f"test_{function}"], f"# checks {function}")]
        if function == "top_k":
            cells.append(tests("test_top_k_tuple", POINTS["test_top_k_tuple"], "# checks top_k returns a tuple"))
    cells.append(written("why", 1, "Any sensible answer.", "Why population and not sample deviation?"))
    return cells


def release_cells():
    """The master as nbgrader releases it: each solution replaced by the stub."""
    from dlcourse.core.notebook import grade_id, is_answer_cell, is_manual_cell

    cells = master_cells()
    for cell in cells:
        if is_answer_cell(cell):
            cell.source = stub(grade_id(cell))
        elif is_manual_cell(cell):
            cell.source = cell.source.split("### BEGIN SOLUTION")[0] + "YOUR ANSWER HERE"
    return cells


# -- what the test cells check, run here on the student's functions ---------------------------------------------

def _close(a, b) -> bool:
    return isinstance(a, (list, tuple)) and len(a) == len(b) and all(abs(x - y) < 1e-9 for x, y in zip(a, b))


def _reference_namespace():
    namespace = {}
    for source in REFERENCE.values():
        exec(source, namespace)
    return namespace


def grade_answers(sources: dict[str, str], seed: int) -> dict[str, tuple[float, str]]:
    """grade_id of each test -> (score, message), by running the functions on seeded random inputs."""
    reference = _reference_namespace()
    namespace = {}
    for source in sources.values():
        try:
            exec(source, namespace)
        except Exception:  # a cell that does not run: its function stays undefined
            pass
    draw = random.Random(seed)
    xs = [round(draw.uniform(-5, 5), 3) for _ in range(25)]
    xs[draw.randrange(25)] = max(xs) + 1.0  # a clear maximum
    # the histogram's data run from exactly 0 to exactly 12 (6 bins of width 2): every edge is exact in floats
    spread = [round(draw.uniform(0.001, 11.999), 3) for _ in range(23)] + [0.0, 12.0]
    draw.shuffle(spread)
    calls = {"normalize": (xs,), "moving_average": (xs, 4), "top_k": ([round(x) for x in xs], 5),
             "histogram": (spread, 6)}
    grades = {"test_warmup": (POINTS["test_warmup"], "")}
    for function in FUNCTIONS:
        test = f"test_{function}"
        args = calls[function]
        try:
            got = namespace[function](*args)
        except NotImplementedError:
            grades[test] = (0.0, "your code raised NotImplementedError: \n  File \"/tmp/ipykernel_1/1.py\"")
            if function == "top_k":
                grades["test_top_k_tuple"] = grades[test]
            continue
        except Exception as error:
            grades[test] = (0.0, f"your code raised {type(error).__name__}: {error}")
            continue
        want = reference[function](*args)
        if function == "histogram" and isinstance(got, list) and sum(got) != len(spread):
            message = (f"histogram(xs, 6): the counts add up to {sum(got)}, not {len(spread)} "
                       f"(is the maximum in the last bin?)")
        elif function in ("top_k", "histogram"):
            message = "" if list(got) == want else f"{function}: expected {want}, got {list(got)}"
        else:
            message = "" if _close(got, want) else f"{function}(xs): max error {max(abs(a - b) for a, b in zip(got, want)) if len(got) == len(want) else float('inf'):.4g}; expected length {len(want)}, got {len(got)}"
        grades[test] = (0.0 if message else float(POINTS[test]), message)
        if function == "top_k":
            grades["test_top_k_tuple"] = (0.0, f"top_k(xs, 5) returned a {type(got).__name__}, expected a tuple")
    return grades


# -- copies ------------------------------------------------------------------------------------------------------

def rename_variables(source: str, draw: random.Random) -> str:
    """Every argument and local variable renamed (the function's own name kept), through Python's tokens."""
    tree = ast.parse(source)
    function = tree.body[0]
    local = {a.arg for a in function.args.args}
    local |= {n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    local |= {a.arg for n in ast.walk(function) if isinstance(n, ast.Lambda) for a in n.args.args}
    new = draw.sample(_WORDS, len(local))
    mapping = {old: f"{word}_{i}" for i, (old, word) in enumerate(zip(sorted(local), new))}
    out, previous = [], None
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        text = token.string
        if token.type == tokenize.NAME and text in mapping and (previous is None or previous.string != "."):
            text = mapping[text]
        out.append((token.type, text))
        if token.type not in (tokenize.NL, tokenize.COMMENT):
            previous = token
    return tokenize.untokenize(out)


def reorder_statements(source: str) -> str:
    """The first two statements of the function swapped where neither uses what the other assigns."""
    tree = ast.parse(source)
    body = tree.body[0].body
    lines = source.split("\n")
    for first, second in zip(body, body[1:]):
        if not all(isinstance(s, ast.Assign) and s.lineno == s.end_lineno for s in (first, second)):
            continue
        names = [({n.id for t in s.targets for n in ast.walk(t) if isinstance(n, ast.Name)},
                  {n.id for n in ast.walk(s.value) if isinstance(n, ast.Name)}) for s in (first, second)]
        if names[0][0] & names[1][1] or names[1][0] & names[0][1]:
            continue
        a, b = first.lineno - 1, second.lineno - 1
        lines[a], lines[b] = lines[b], lines[a]
        return "\n".join(lines)
    return source


def disguise(source: str, draw: random.Random) -> str:
    source = reorder_statements(rename_variables(source.strip("\n"), draw))
    lines = source.split("\n")
    lines.insert(1, "    # my own solution, worked out on paper")
    return "\n".join(lines)


def change_comments(source: str) -> str:
    lines = [line for line in source.strip("\n").split("\n") if not line.strip().startswith("#")]
    lines = [re.sub(r"\s+#.*$", "", line) for line in lines]
    lines.insert(1, "    # straightforward, see lecture 2")
    return "\n".join(lines)


# -- the class ---------------------------------------------------------------------------------------------------

@dataclass
class GeneratedClass:
    root: Path
    copied_pairs: set[frozenset[str]] = field(default_factory=set)
    reference_copy: str = ""
    independent: list[str] = field(default_factory=list)
    blanks: list[str] = field(default_factory=list)
    styles: dict[str, int] = field(default_factory=dict)


def write_course(root: Path) -> None:
    from dlcourse.authoring import write_notebook

    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPOSITORY / "nbgrader_config.py", root / "nbgrader_config.py")
    write_notebook(root / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", master_cells())
    write_notebook(root / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", release_cells())


def store(root: Path, student: str, answers: dict[str, str] | None, seed: int, *, status: str = "ok",
          seconds: float = 1.0, assignment: str = ASSIGNMENT) -> None:
    """One student's graded notebook and ``.dlcourse-result.json``, as ``dlcourse grade`` stores them."""
    from dlcourse.authoring import write_notebook
    from dlcourse.core.course import CourseLayout
    from dlcourse.grading.results import CellGrade, NotebookResult, Status, SubmissionResult
    from dlcourse.core.notebook import grade_id, is_answer_cell

    layout = CourseLayout(root)
    folder = layout.autograded_dir(student, assignment)
    folder.mkdir(parents=True, exist_ok=True)
    cells = release_cells()
    sources = {}
    for cell in cells:
        if is_answer_cell(cell):
            sources[grade_id(cell)] = (answers or {}).get(grade_id(cell), cell.source).strip("\n")
            cell.source = sources[grade_id(cell)]
    grades = grade_answers(sources, seed)
    if status == "timeout":  # the last two tests never ran
        for test in list(grades)[-2:]:
            grades[test] = (0.0, Status.TIMEOUT.student_text)
    if status == "missing":
        grades = {test: (0.0, Status.MISSING.student_text) for test in grades}
    result_cells = [CellGrade(NOTEBOOK, test, "test", float(POINTS[test]), score, message)
                    for test, (score, message) in grades.items()]
    result_cells.append(CellGrade(NOTEBOOK, "why", "manual", 1.0, None, ""))
    notebook = NotebookResult(NOTEBOOK, Status(status), result_cells,
                              message="" if status == "ok" else Status(status).student_text, seconds=seconds)
    result = SubmissionResult(student, assignment, Status(status), [notebook], fingerprint="generated",
                              seconds=seconds)
    if status != "missing":
        write_notebook(folder / f"{NOTEBOOK}.ipynb", cells)
    (folder / ".dlcourse-result.json").write_text(json.dumps(result.to_json()))


def generate_class(root: Path, seed: int) -> GeneratedClass:
    """The course ``stats`` with its release and a class of graded results (see the module's text)."""
    draw = random.Random(seed)
    root = Path(root)
    write_course(root)
    made = GeneratedClass(root)
    ids = [f"s{n:02d}" for n in draw.sample(range(10, 99), 14)]
    styles = list(range(len(STYLES)))
    draw.shuffle(styles)
    for student, style in zip(ids, styles):
        store(root, student, STYLES[style], seed, seconds=draw.uniform(0.5, 3.0))
        made.independent.append(student)
        made.styles[student] = style
    rest = ids[len(styles):]
    for original in draw.sample(made.independent, 2):
        copier = rest.pop()
        store(root, copier, {f: disguise(s, draw) for f, s in STYLES[made.styles[original]].items()}, seed,
              seconds=draw.uniform(0.5, 3.0))
        made.copied_pairs.add(frozenset((original, copier)))
    made.reference_copy = rest.pop()
    store(root, made.reference_copy, {f: change_comments(s) for f, s in REFERENCE.items()}, seed, seconds=1.2)
    for _ in range(2):
        made.blanks.append(rest.pop())
        store(root, made.blanks[-1], None, seed, seconds=draw.uniform(0.3, 1.0))
    store(root, rest.pop(), {"normalize": SLOW_NORMALIZE}, seed, status="timeout", seconds=90.0)
    store(root, rest.pop(), None, seed, status="missing", seconds=0.0)
    return made
