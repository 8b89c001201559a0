"""What every side of dlcourse shares: the course's layout and nbgrader's notebooks.

* :mod:`.course` -- :class:`~.course.CourseLayout` (nbgrader's folders, assignments, students, result
  paths) and the one course-root rule.
* :mod:`.notebook` -- the one home of nbgrader's cell kinds, ``strip_magics``, ``read_notebook``,
  ``atomic_write``.

Imports nothing else of dlcourse; a student kit ships it.
"""
