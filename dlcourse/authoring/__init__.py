"""The instructor's authoring tools: masters to release, release to student kit.

* :mod:`.cells` -- helpers that write a master notebook's nbgrader metadata (re-exported here:
  ``from dlcourse.authoring import answer, code, md, tests, written, write_notebook``).
* :mod:`.release` -- ``dlcourse release``: nbgrader's generate step and the strict-tests check.
* :mod:`.kit` -- ``dlcourse student-kit``: the folder students get, scanned for secrets.
* :mod:`.adopt` -- ``dlcourse adopt``: bring a plain nbgrader course.
* :mod:`.demo` -- ``dlcourse demo``: the whole pipeline on made-up students.
"""

from .cells import SCHEMA_VERSION, answer, code, md, tests, write_notebook, written  # noqa: F401
