"""One exam, one version: which questions, in which order, with which options, for how many points.

:func:`plan_versions` picks the questions from what the masters offer (:mod:`.metadata`) and draws the K
versions from the seed; :func:`draw_versions` is the pure half (no files), so a test can draw versions of
any offer. A :class:`Version` is all the paper (:mod:`.paper`), the notebook (:mod:`.notebook`) and the
seating (:mod:`.seating`) need; they never read a master. The texts a version shares between its paper and
its notebook (the points as words, the rules) are here too, so the two say the same.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from ..core.course import no_such
from ..core.templates import render
from .metadata import CHOICES, ChoiceQuestion, CodingItem, ExamError, OpenQuestion, read_course

#: The coding items of the default exam, in the order of the course.
DEFAULT_ITEMS = ("linear", "activations", "conv2d", "sgd_momentum", "fcnet_do", "rnn", "self_attention",
                 "autoencoder")
DEFAULT_DURATION = 120  # minutes


@dataclass
class ChoiceShown:
    question: ChoiceQuestion
    order: list[int]  # order[k] = index into question.options shown as letter k

    @property
    def answer(self) -> str:
        return CHOICES[self.order.index(self.question.answer)]


@dataclass
class Version:
    name: str          # the exam's name
    number: int        # 1..K
    of: int            # K
    seed: int
    duration: int
    items: list[CodingItem]
    open_questions: list[OpenQuestion]
    choices: list[ChoiceShown]

    @property
    def assignment(self) -> str:
        return self.name if self.of == 1 else f"{self.name}_v{self.number}"

    @property
    def label(self) -> str:
        return "" if self.of == 1 else f"version {self.number} of {self.of}"

    def section_points(self) -> dict[str, float]:
        return {"coding": sum(i.points for i in self.items),
                "open": sum(q.points for q in self.open_questions),
                "choice": sum(c.question.points for c in self.choices)}

    @property
    def total(self) -> float:
        return sum(self.section_points().values())

    def numbering(self) -> dict[str, int]:
        """Question numbers through the whole paper: coding items, then open, then single-choice."""
        keys = [i.key for i in self.items] + [q.key for q in self.open_questions] + \
               [c.question.key for c in self.choices]
        return {key: n for n, key in enumerate(keys, start=1)}


def _pick(kind: str, wanted: list[str] | None, available: dict, default: list[str], where: str) -> list:
    names = list(wanted) if wanted else list(default)
    for name in names:
        if name not in available:
            raise ExamError(no_such(kind, name, sorted(available), where))
    return [available[n] for n in names]


def plan_versions(root: Path, name: str, *, items: list[str] | None = None, open_questions: list[str] | None = None,
                  papers: list[str] | None = None, seed: int = 0, variants: int = 1,
                  duration: int = DEFAULT_DURATION) -> list[Version]:
    """The K versions of an exam from the masters under ``root`` (see :func:`draw_versions`); ``items``,
    ``open_questions`` and ``papers`` name the questions (default: the default items, every open question
    and every paper), and a name that is not there is refused with the names that are."""
    if variants < 1:
        raise ExamError("--variants must be at least 1")
    all_items, all_open, all_choices = read_course(root)
    chosen_items = _pick("exam item", items, all_items, [k for k in DEFAULT_ITEMS if k in all_items],
                         "the masters' exam metadata")
    chosen_open = _pick("open question", open_questions, all_open, list(all_open), "the masters' written cells")
    chosen_choices = _pick("paper", papers, all_choices, list(all_choices), "A7's reading questions")
    return draw_versions(name, chosen_items, chosen_open, chosen_choices, seed=seed, variants=variants,
                         duration=duration)


def draw_versions(name: str, items: list[CodingItem], open_questions: list[OpenQuestion],
                  choices: list[ChoiceQuestion], *, seed: int, variants: int, duration: int) -> list[Version]:
    """The K versions of these questions: option order (every version) and question order within each
    section (versions 2..K) drawn from ``seed``. No two versions show every question's options alike."""
    versions, seen = [], set()
    for number in range(1, variants + 1):
        rng = random.Random(f"dlcourse-exam:{name}:{seed}:{number}")
        for _ in range(1000):
            orders = [tuple(rng.sample(range(len(CHOICES)), len(CHOICES))) for _ in choices]
            if tuple(orders) not in seen or not choices:
                break
        seen.add(tuple(orders))
        shuffle = (lambda xs, rng=rng: rng.sample(xs, len(xs))) if number > 1 else list
        versions.append(Version(
            name, number, variants, seed, duration, shuffle(items), shuffle(open_questions),
            [ChoiceShown(q, list(o)) for q, o in zip(shuffle(list(choices)) if number > 1 else choices, orders)]))
    return versions


# --------------------------------------------------------------------------
# The texts the paper and the notebook share.


def points_text(value: float) -> str:
    """``1 point``, ``2.5 points``."""
    text = f"{value:g}"
    return f"{text} point" if value == 1 else f"{text} points"


def rules(version: Version) -> list[str]:
    """The exam's rules, one sentence each: on the paper's cover and in the notebook's first text cell."""
    return render_text("rules.txt.j2", version=version, points_text=points_text).splitlines()


def render_text(name: str, /, **context) -> str:
    """The exam's template ``name`` rendered (HTML escaped, other texts not), without its file's last newline."""
    return render("dlcourse.exam", name, **context).removesuffix("\n")
