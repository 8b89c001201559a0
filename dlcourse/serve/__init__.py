"""``dlcourse serve``: a hand-in service that grades each hand-in as it arrives (grader-only).

    store.py    the database (SQLAlchemy: SQLite by default, PostgreSQL by URL)
    files.py    hand-in files, content-addressed and fsync-ed; safe unpacking of zips
    auth.py     personal tokens (stored hashed) behind a replaceable sign-in
    policy.py   which hand-in counts, what a student sees (c.DlcourseServe in nbgrader_config.py)
    service.py  receive, check, store, show: the work without HTTP
    worker.py   grading on arrival with the engine of ``dlcourse grade``
    publish.py  results into submitted/, autograded/, groups.csv for the instructor's commands
    app.py      the Tornado routes: the API and the page (templates/)
    server.py   everything put together; cli.py the command's arguments

See docs/serve.md.
"""
