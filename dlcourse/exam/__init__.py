"""The exam, built from the masters: a paper with its key, and a master notebook for a computer-based sitting.

``dlcourse exam build NAME`` reads what the masters say about the exam (``metadata["dlcourse"]["exam"]`` of
their answer and written cells, written by ``scripts/exam_metadata.py``; see docs/exam.md) and writes

- ``exams/NAME/exam.pdf``: the paper: a cover (rules, duration, points per section, total), the coding
  questions (the course's templates in a monospaced font with line numbers, each solution region blanked
  and labelled with its sub-question and points), the open questions, the single-choice questions, and
  answer sheets with a box per sub-question;
- ``exams/NAME/key.pdf``: every solution, the points per sub-question and what earns partial credit, the
  open questions' rubrics, the single-choice answers of this version;
- ``source/NAME/exam.ipynb``: the same exam as a master notebook (answer cells with the items' own
  tests, the written cells graded by hand, single-choice answers autograded), so ``dlcourse release NAME``
  and ``dlcourse grade NAME`` work on it as on any assignment.

With ``variants=K`` (K > 1) there are K versions: options shuffled, questions in another order within
each section, other random inputs in the public checks. Version k is ``exams/NAME/vk/{exam,key}.pdf`` and
the assignment ``NAME_vk`` (``source/NAME_vk/exam.ipynb``); ``exams/NAME/seating.csv`` seats the room
so that no two neighbours (side, front, back, and diagonal where K allows) sit the same version, and
``exams/NAME/versions.json`` says which assignment and which answers belong to which version.
Everything is drawn from ``seed``: the same command gives the same exam.

The modules, in the order the data flows (each imports only those above it):

- :mod:`.metadata`: what the masters hold (:func:`read_course`: items, open and single-choice questions);
- :mod:`.plan`: one exam, one version (:func:`plan_versions`), and the texts paper and notebook share;
- :mod:`.notebook`: a version as the master notebook of a computer-based sitting (:func:`exam_notebook`);
- :mod:`.paper`: a version as the paper and the key (:func:`paper_cells`, :func:`write_pdfs`);
- :mod:`.seating`: who sits which version, and the grades of all versions in one table;
- :mod:`.build`: ``dlcourse exam build``, planned (:func:`~.build.plan_build`) then written.

Every HTML, markdown and cell text is a Jinja2 template in ``templates/``. The names below are those the
CLI, the kit and the tests import from ``dlcourse.exam``.
"""

from __future__ import annotations

from .build import BuildPlan, BuiltExam, ExamOptions, build_exam, exam_assignments, plan_build, write_build
from .metadata import (CHOICES, HIDDEN_BEGIN, LETTERS, ChoiceQuestion, CodingItem, ExamError, OpenQuestion, Part,
                       read_course, regions_of)
from .notebook import EXAM_SETUP, choice_statement, exam_notebook, labelled_source, vary_public_inputs
from .paper import paper_cells, write_pdfs
from .plan import DEFAULT_DURATION, DEFAULT_ITEMS, ChoiceShown, Version, draw_versions, plan_versions
from .seating import DEFAULT_ROOM, exam_results, plan_seating, read_seating, seat_versions, write_seating

__all__ = ["BuildPlan", "BuiltExam", "CHOICES", "ChoiceQuestion", "ChoiceShown", "CodingItem", "DEFAULT_DURATION",
           "DEFAULT_ITEMS", "DEFAULT_ROOM", "EXAM_SETUP", "ExamError", "ExamOptions", "HIDDEN_BEGIN", "LETTERS",
           "OpenQuestion", "Part", "Version", "build_exam", "choice_statement", "draw_versions", "exam_assignments",
           "exam_notebook", "exam_results", "labelled_source", "paper_cells", "plan_build", "plan_seating",
           "plan_versions", "read_course", "read_seating", "regions_of", "seat_versions", "vary_public_inputs",
           "write_build", "write_pdfs", "write_seating"]
