"""Where a student's code runs while graded: isolated, limited, thrown away.

* :mod:`.isolation` -- bubblewrap, cgroups, rlimits, the watchdog launcher.
* :mod:`.scratch` -- the grader's temporary folders, and the sweep of a killed grader's.
* :mod:`.kernel` -- the kernel engine: one Jupyter kernel per notebook (:class:`~.kernel.KernelSession`).
* :mod:`.fork` -- the fork engine, the grader's side: the warm zygote and a forked child per notebook.
* :mod:`.child` -- the fork engine's sandboxed side (``python -m dlcourse.sandbox.child``): untrusted by design.

Grader-only: a student kit never ships it.
"""
