"""What the instructor and the students read after grading.

* :mod:`.feedback` -- ``dlcourse feedback``: per-student pages that never show a hidden test.
* :mod:`.report` -- ``dlcourse report``: the class report (HTML, figures, per-item statistics).
* :mod:`.similarity` -- answers that look alike across students.
"""
