"""The round trip with the LMS: roster in, hand-ins collected, grades out.

* :mod:`.roster` -- ``roster.csv``, names matched to students, groups.
* :mod:`.collect` -- ``dlcourse collect``: hand-ins from Moodle, Canvas, GitHub Classroom or zips.
* :mod:`.export` -- ``dlcourse export``: Moodle's worksheet, Canvas's gradebook CSV, plain CSV.
"""
