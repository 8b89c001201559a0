"""What grading produces, and the options it runs under (the one place their defaults live).

A :class:`Status` says how a notebook's grading went; a student's status is
the worst of their notebooks'. Statuses are declared worst first, each with
the sentence a student reads in their feedback.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from enum import Enum

from ..sandbox.isolation import Limits

#: Part of every result's fingerprint: bump it when a change of the grader changes grades.
GRADER_VERSION = "3"  # 3: AUTOTEST expanded, NBGRADER_EXECUTION and source/'s files as stock (issue 29)
#: :attr:`CellGrade.state` of a test the reference solution fails on this machine (see :mod:`.reference`).
GRADER_FAULT = "not graded: grader fault"


class Status(str, Enum):
    """How grading a notebook went, worst first. Compares equal to its string value (``"ok"``)."""

    def __new__(cls, value: str, student_text: str):
        status = str.__new__(cls, value)
        status._value_ = value
        status.student_text = student_text
        return status

    INVALID_NOTEBOOK = "invalid-notebook", "the notebook file could not be read"
    MISSING = "missing", "notebook missing"
    MEMORY = "memory", "the notebook ran out of memory"
    TIMEOUT = "timeout", "a cell ran past its time limit"
    CRASHED = "crashed", "the notebook's kernel crashed"
    ERROR = "error", "grading failed (ask your instructor)"
    RENAMED = "renamed", "graded (the notebook had another name)"
    OK = "ok", "graded"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def rank(self) -> int:
        """0 for the worst status."""
        return list(Status).index(self)

    @classmethod
    def worst(cls, statuses) -> "Status":
        return min((cls(s) for s in statuses), key=lambda s: s.rank, default=cls.OK)


@dataclass
class GradingOptions:
    """How to grade. Every default of ``dlcourse grade`` is here (the sandbox's limits in :class:`Limits`)."""

    isolate: bool = True
    cell_timeout: float = 120.0  # seconds per cell, and per test cell
    notebook_timeout: float = 600.0  # seconds per notebook, all cells together
    limits: Limits = field(default_factory=Limits)
    read_only: list[str] = field(default_factory=list)  # folders the sandbox shows read-only, e.g. the data sets
    engine: str = "fork"  # "kernel": a Jupyter kernel per notebook; "fork": a child of a warm zygote
    # stderr outputs matching it do not fail a plain test (nbgrader's c.IgnorePattern); None: the course's
    ignore_pattern: str | None = None

    def fingerprint(self) -> str:
        """What decides a grade: the engine does not (both grade alike), so a result is kept across it."""
        options = asdict(self)
        options.pop("engine")
        return json.dumps(options, sort_keys=True, default=str)

    @classmethod
    def default(cls, name: str):
        """The default value of the option ``name`` (for the command line's help)."""
        return getattr(cls(), name)


#: The phases of :attr:`NotebookResult.timings`, in seconds (``requests`` is a count).
TIMING_KEYS = ("start", "imports", "student_cells", "test_cells", "requests", "request_seconds", "teardown")


@dataclass
class CellGrade:
    notebook: str
    grade_id: str
    kind: str  # "test" (autograded) or "manual"
    max_score: float
    score: float | None = None
    message: str = ""
    state: str = ""  # "" when graded; GRADER_FAULT: excluded from the score and the maximum

    @property
    def counted(self) -> bool:
        """An autograded cell that counts towards the score and the maximum."""
        return self.kind == "test" and not self.state


@dataclass
class NotebookResult:
    name: str
    status: Status
    cells: list[CellGrade]
    message: str = ""
    seconds: float = 0.0
    graded: dict | None = None  # the executed notebook, as JSON; stored beside the result, not in it
    #: Where the seconds went (see :data:`TIMING_KEYS`); read by bench/profile_grading.py.
    timings: dict = field(default_factory=dict)

    @property
    def score(self) -> float:
        return sum(c.score or 0.0 for c in self.cells if c.counted)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.cells if c.counted)


@dataclass
class SubmissionResult:
    student_id: str
    assignment: str
    status: Status
    notebooks: list[NotebookResult]
    fingerprint: str = ""
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(nb.score for nb in self.notebooks)

    @property
    def max_score(self) -> float:
        return sum(nb.max_score for nb in self.notebooks)

    def to_json(self) -> dict:
        """The result as JSON data, without the executed notebooks (they are stored as ``.ipynb``)."""
        data = asdict(self)
        for notebook in data["notebooks"]:
            notebook.pop("graded", None)
        return json.loads(json.dumps(data))

    @classmethod
    def from_json(cls, data: dict) -> "SubmissionResult":
        known = {f.name for f in fields(NotebookResult)}
        notebooks = [NotebookResult(**{**{k: v for k, v in nb.items() if k in known}, "status": Status(nb["status"]),
                                       "cells": [CellGrade(**c) for c in nb["cells"]]})
                     for nb in data["notebooks"]]
        return cls(**{**data, "status": Status(data["status"]), "notebooks": notebooks})
