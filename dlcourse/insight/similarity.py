"""Which submissions' answer cells are more alike than chance: evidence for a person, never a penalty.

Only the student's own code counts: every line the release already holds
(the stub, the ``def`` line, a given import) is removed first. What is left
is read as Python's abstract syntax tree and written out as tokens with the
names taken away (a variable, argument or function the student named becomes
``V``; a module, attribute or builtin keeps its name, since ``torch.cumsum``
says more than ``x``), so renaming variables, changing comments, spacing
or brackets changes nothing. Tokens are cut into k-grams *within each
statement* and the k-grams winnowed (Schleimer, Wilkerson and Aiken's
fingerprints), so statements in another order still match.

Two submissions' similarity is the Jaccard index of their fingerprints,
each fingerprint weighted by how rare it is in the class (``log(N / df)``):
code that half the class writes the same way (``return x * x``) says
nothing; a rare run of tokens that two people share says much. The cut-off
comes from the class's own pairs (a robust outlier rule: median + 3.5 x
1.4826 x MAD, and never below :data:`FLOOR`).

Why not ``copydetect`` (0.5, offline, pure Python; it maps every name to
``V``/``F`` with pygments and winnows character 25-grams): measured by
``bench/similarity_measure.py`` on ten generated classes of
``tests/grader/test_report.py``, both rank every copy above every
independent pair (AUC 1.00, no wrong flag at the class cut-off), but its
lowest copy scores 0.72 against 0.92 here and its highest independent pair
0.20 against 0.14 (margin 0.52 against 0.79): its character k-grams run
across line ends, so reordered statements lose part of their matches. This
module keeps the wider margin and adds no dependency.
"""

from __future__ import annotations

import ast
import builtins
import io
import math
import statistics
import tokenize
from dataclasses import dataclass, field
from itertools import combinations

from ..core.notebook import strip_magics

K = 5  # tokens per k-gram
WINDOW = 3  # k-grams per winnowing window
MIN_TOKENS = 8  # a submission with less own code is not compared
FLOOR = 0.35  # a pair below this is never flagged, whatever the class's spread
REFERENCE = "(reference solution)"

_KEPT_NAMES = set(dir(builtins)) | {"self", "cls"}


@dataclass
class Code:
    """One student's own code: grade_id of each answer cell -> its source without the release's lines."""

    student_id: str
    cells: dict[str, str]
    tokens: list[tuple[str, ...]] = field(default_factory=list)  # statements, each a tuple of tokens
    prints: dict[int, int] = field(default_factory=dict)  # fingerprint -> count

    @property
    def size(self) -> int:
        return sum(len(s) for s in self.tokens)


@dataclass
class Pair:
    a: str
    b: str
    score: float
    flagged: bool = False
    robust_z: float = 0.0


def own_lines(source: str, release_lines: set[str]) -> str:
    """``source`` without the lines the release gives (compared stripped); comments and blank lines dropped."""
    kept = []
    for line in source.splitlines():
        text = line.strip()
        if not text or text.startswith("#") or text in release_lines:
            kept.append("")  # keep line numbers
        else:
            kept.append(line)
    return "\n".join(kept)


def release_line_set(release_sources) -> set[str]:
    return {line.strip() for source in release_sources for line in source.splitlines() if line.strip()}


class _Tokens(ast.NodeVisitor):
    """Pre-order node tokens, names normalised, grouped by the statement (line) they belong to."""

    def __init__(self, kept_names: set[str], skip_lines: set[int]):
        self.kept = kept_names
        self.skip = skip_lines
        self.out: dict[int, list[str]] = {}
        self.line = 0

    def emit(self, token: str, node) -> None:
        line = getattr(node, "lineno", self.line)
        if line in self.skip:
            return
        self.out.setdefault(line, []).append(token)

    def generic_visit(self, node):
        if isinstance(node, ast.stmt):
            self.line = node.lineno
        if isinstance(node, (ast.Load, ast.Store, ast.Del, ast.expr_context)):
            return
        if isinstance(node, ast.Name):
            self.emit(node.id if node.id in self.kept else "V", node)
            return
        if isinstance(node, ast.arg):
            self.emit("arg", node)
            return
        if isinstance(node, ast.Constant):
            self.emit(type(node.value).__name__, node)
            return
        self.emit(type(node).__name__, node)
        if isinstance(node, ast.Attribute):
            self.visit(node.value)
            self.emit("." + node.attr, node)
            return
        if isinstance(node, ast.alias):
            self.emit(node.name, node)
        if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.AugAssign)):
            self.emit(type(node.op).__name__, node)
        if isinstance(node, ast.Compare):
            for op in node.ops:
                self.emit(type(op).__name__, node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.operator, ast.unaryop, ast.boolop, ast.cmpop)):
                continue
            self.visit(child)


def _imported_names(tree) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def statement_tokens(source: str, release_lines: set[str], kept_names: set[str] = frozenset()) -> list[tuple[str, ...]]:
    """The normalised tokens of a cell's own code, one tuple per source line (the release's lines left out)."""
    source = strip_magics(source)
    skip = {n for n, line in enumerate(source.splitlines(), start=1)
            if not line.strip() or line.strip().startswith("#") or line.strip() in release_lines}
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return _lexical_tokens(own_lines(source, release_lines))
    visitor = _Tokens(_KEPT_NAMES | set(kept_names) | _imported_names(tree), skip)
    for statement in tree.body:
        visitor.visit(statement)
    return [tuple(tokens) for _, tokens in sorted(visitor.out.items()) if tokens]


def _lexical_tokens(source: str) -> list[tuple[str, ...]]:
    """For code that does not parse: Python's tokens, names that are not builtins as ``V``."""
    import keyword

    lines: dict[int, list[str]] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.NAME:
                text = token.string if keyword.iskeyword(token.string) or token.string in _KEPT_NAMES else "V"
            elif token.type == tokenize.NUMBER:
                text = "N"
            elif token.type == tokenize.STRING:
                text = "S"
            elif token.type == tokenize.OP:
                text = token.string
            else:
                continue
            lines.setdefault(token.start[0], []).append(text)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return [tuple(v) for _, v in sorted(lines.items())]


def line_key(line: str) -> str:
    """A line of code with names and literals normalised, for marking shared lines side by side."""
    tokens = _lexical_tokens(line.strip())
    return " ".join(tokens[0]) if tokens else ""


def fingerprints(statements: list[tuple[str, ...]], k: int = K, window: int = WINDOW) -> dict[int, int]:
    """Winnowed k-gram hashes of each statement (a short statement is one k-gram), with their counts."""
    import zlib

    found: dict[int, int] = {}
    for statement in statements:
        grams = [statement[i:i + k] for i in range(max(1, len(statement) - k + 1))]
        hashes = [zlib.crc32(" ".join(g).encode()) for g in grams]
        chosen = set()
        if len(hashes) <= window:
            chosen.add(min(range(len(hashes)), key=lambda i: (hashes[i], -i)))
        for start in range(len(hashes) - window + 1):
            span = range(start, start + window)
            chosen.add(min(span, key=lambda i: (hashes[i], -i)))  # rightmost minimum, as robust winnowing does
        for i in chosen:
            found[hashes[i]] = found.get(hashes[i], 0) + 1
    return found


def prepare(codes: list[Code], release_lines: set[str], kept_names: set[str] = frozenset()) -> list[Code]:
    for code in codes:
        code.tokens = [s for source in code.cells.values() for s in statement_tokens(source, release_lines, kept_names)]
        code.prints = fingerprints(code.tokens)
    return codes


def weighted_jaccard(a: dict[int, int], b: dict[int, int], weight: dict[int, float]) -> float:
    keys = set(a) | set(b)
    union = sum(max(a.get(h, 0), b.get(h, 0)) * weight.get(h, 0.0) for h in keys)
    both = sum(min(a.get(h, 0), b.get(h, 0)) * weight.get(h, 0.0) for h in keys)
    return both / union if union > 0 else 0.0


def rarity(codes: list[Code]) -> dict[int, float]:
    """log(N / df) per fingerprint: 0 for what everyone writes."""
    document_frequency: dict[int, int] = {}
    for code in codes:
        for h in code.prints:
            document_frequency[h] = document_frequency.get(h, 0) + 1
    n = max(len(codes), 2)
    return {h: math.log(n / df) + (1.0 / n if df < n else 0.0) for h, df in document_frequency.items()}


def threshold(scores: list[float], z: float = 3.5) -> float:
    """The class's own cut-off: median + z robust standard deviations (1.4826 MAD), at least :data:`FLOOR`."""
    if not scores:
        return 1.0
    median = statistics.median(scores)
    mad = statistics.median(abs(s - median) for s in scores) * 1.4826
    mad = max(mad, 0.02)  # a class of near-identical pairs has no spread to measure
    return max(FLOOR, median + z * mad)


def similar_pairs(codes: list[Code], reference: Code | None = None) -> tuple[list[Pair], list[Pair], float]:
    """All compared pairs of students (best first), the pairs with the reference, and the cut-off used.

    Submissions with less than :data:`MIN_TOKENS` tokens of their own code are left out.
    """
    compared = [c for c in codes if c.size >= MIN_TOKENS]
    pool = compared + ([reference] if reference is not None and reference.size >= MIN_TOKENS else [])
    weight = rarity(pool)
    pairs = [Pair(a.student_id, b.student_id, weighted_jaccard(a.prints, b.prints, weight))
             for a, b in combinations(compared, 2)]
    cut = threshold([p.score for p in pairs])
    median = statistics.median([p.score for p in pairs]) if pairs else 0.0
    mad = max(statistics.median(abs(p.score - median) for p in pairs) * 1.4826, 0.02) if pairs else 1.0
    for pair in pairs:
        pair.robust_z = (pair.score - median) / mad
        pair.flagged = pair.score >= cut
    with_reference = []
    if reference is not None and reference in pool:
        with_reference = [Pair(c.student_id, REFERENCE, weighted_jaccard(c.prints, reference.prints, weight))
                          for c in compared]
        for pair in with_reference:
            pair.robust_z = (pair.score - median) / mad
            pair.flagged = pair.score >= cut
    pairs.sort(key=lambda p: -p.score)
    with_reference.sort(key=lambda p: -p.score)
    return pairs, with_reference, cut
