"""Similarity: ``copydetect`` against dlcourse's own AST-token winnowing, on generated classes.

For each seed, generates the class of ``tests/grader/report_class.py`` (six
independent styles, two copies with renamed variables and reordered lines,
a copy of the reference, blanks), scores every pair of students both ways on
the same input (the students' own code, the release's lines removed) and
prints, per method: the lowest score of a true copy, the highest score of an
independent pair, their margin, the area under the ROC curve, and how many
pairs each method's class cut-off (:func:`dlcourse.insight.similarity.threshold`)
flags wrongly. copydetect is not a dependency of dlcourse: put it on the
path first (``pip install copydetect`` or ``PYTHONPATH=unzipped-wheel``).

Run: ``.venv/bin/python bench/similarity_measure.py [--seeds 10]``.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "grader")]

from dlcourse.insight import similarity  # noqa: E402
from dlcourse.core.course import CourseLayout  # noqa: E402
from dlcourse.insight.report import load_results, student_codes  # noqa: E402
from report_class import generate_class  # noqa: E402


def copydetect_scores(codes, release_lines, release_text):
    from copydetect import CodeFingerprint, compare_files

    noise, guarantee = 25, 30  # copydetect's defaults
    window = guarantee - noise + 1
    boilerplate = CodeFingerprint("release.py", noise, window, fp=io.StringIO(release_text)).hashes
    prints = {}
    for code in codes:
        text = "\n".join(similarity.own_lines(s, release_lines) for s in code.cells.values())
        prints[code.student_id] = CodeFingerprint(f"{code.student_id}.py", noise, window,
                                                  boilerplate=list(boilerplate), fp=io.StringIO(text))
    scores = {}
    for a, b in combinations(sorted(prints), 2):
        _, (sim_a, sim_b), _ = compare_files(prints[a], prints[b])
        scores[frozenset((a, b))] = max(sim_a, sim_b)
    return scores


def own_scores(codes, reference):
    pairs, _, _ = similarity.similar_pairs(codes, reference)
    return {frozenset((p.a, p.b)): p.score for p in pairs}


def auc(positive, negative) -> float:
    wins = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    return wins / (len(positive) * len(negative))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    totals = {}
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as scratch:
            made = generate_class(Path(scratch) / "course", seed)
            layout = CourseLayout(Path(scratch) / "course")
            codes, reference, release_lines = student_codes(layout, "stats", load_results(layout, "stats"))
            release_text = "\n".join(line for line in release_lines)
            compared = [c for c in codes if c.size >= similarity.MIN_TOKENS]
            for name, scores in (("ast-winnow (dlcourse)", own_scores(codes, reference)),
                                 ("copydetect 0.5", copydetect_scores(compared, release_lines, release_text))):
                positive = [s for p, s in scores.items() if p in made.copied_pairs]
                negative = [s for p, s in scores.items() if p not in made.copied_pairs]
                cut = similarity.threshold(list(scores.values()))
                wrong = sum((s >= cut) != (p in made.copied_pairs) for p, s in scores.items())
                row = totals.setdefault(name, {"min_copy": 1.0, "max_other": 0.0, "auc": [], "wrong": 0})
                row["min_copy"] = min(row["min_copy"], min(positive))
                row["max_other"] = max(row["max_other"], max(negative))
                row["auc"].append(auc(positive, negative))
                row["wrong"] += wrong
    print(f"{args.seeds} generated classes; pairs of students only (the reference copy is not a pair)")
    print(f"{'method':<24} {'lowest copy':>11} {'highest other':>13} {'margin':>7} {'mean AUC':>8} {'wrong flags':>11}")
    for name, row in totals.items():
        print(f"{name:<24} {row['min_copy']:>11.2f} {row['max_other']:>13.2f} "
              f"{row['min_copy'] - row['max_other']:>7.2f} {sum(row['auc']) / len(row['auc']):>8.3f} {row['wrong']:>11}")


if __name__ == "__main__":
    main()
