"""The student's commands: hand-in, PDF, the lab, an exam sitting.

* :mod:`.cli` -- ``dlcourse handin | lab | data``: the whole command of a student kit.
* :mod:`.handin` -- the names check, the public tests, the zip.
* :mod:`.pdf` -- the notebook as a PDF, offline.
* :mod:`.lab` -- JupyterLab with the Validate button; :mod:`.examlab` -- ``dlcourse lab --exam``.

A student kit ships this package; it imports only ``core``, ``bridge`` and the notebook modules.
"""
