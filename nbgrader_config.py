"""nbgrader configuration for the course; `dlcourse` reads the same file.

Plain `nbgrader generate_assignment` / `nbgrader autograde` from the
repository root work with it as they are.
"""

import os

c = get_config()  # noqa: F821 - provided by traitlets when nbgrader loads this file

c.CourseDirectory.course_id = "dlcourse"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]

# Long enough for the shrunken training cells of A3, A4 and A6 on 2 CPU cores.
c.Execute.timeout = 120

# nbgrader scores 0 for a test cell that writes to stderr; a warning printed by
# torch or matplotlib must not cost a correct answer its points.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"Warning\b|warnings\.warn|\bWARNING\b"

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# dlcourse's own settings (nbgrader ignores them; `dlcourse config` lists each with its help and default,
# `dlcourse config --generate` prints them all): the students per hand-in that `dlcourse collect`
# expects; a smaller or larger group is listed in reports/<assignment>/WARNINGS.txt (see docs/lms.md).
c.Dlcourse.group_size = 2
