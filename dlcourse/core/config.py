"""The course's settings: what dlcourse takes from ``nbgrader_config.py``.

Grading honours the nbgrader settings stock nbgrader honours (``c.IgnorePattern``,
``c.Execute.timeout``) and dlcourse's own (``c.Dlcourse.*``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .course import CONFIG_NAME, read_config


@dataclass
class CourseSettings:
    """What grading takes from ``nbgrader_config.py`` (as stock nbgrader would)."""

    ignore_pattern: str = ""  # c.IgnorePattern.pattern, when c.IgnorePattern.enabled
    cell_timeout: float | None = None  # c.Execute.timeout, else c.ExecutePreprocessor.timeout
    strict_tests: list[str] | bool = field(default_factory=list)  # c.Dlcourse.strict_tests

    def strict(self, assignment: str) -> bool:
        """Whether ``assignment`` must have no test cell that runs in the student's kernel."""
        return self.strict_tests is True or (isinstance(self.strict_tests, (list, tuple))
                                             and assignment in self.strict_tests)


def course_settings(root: Path) -> CourseSettings:
    """The settings of ``root/nbgrader_config.py`` (defaults when it is missing or broken)."""
    settings = CourseSettings()
    try:
        config = read_config(Path(root) / CONFIG_NAME)
    except Exception:  # a broken config is nbgrader's to report
        return settings
    ignore = config.get("IgnorePattern", {})
    if ignore.get("enabled", False) and ignore.get("pattern", ""):
        settings.ignore_pattern = str(ignore["pattern"])
        re.compile(settings.ignore_pattern)
    for section in ("Execute", "ExecutePreprocessor"):
        if "timeout" in config.get(section, {}) and config[section]["timeout"] is not None \
                and float(config[section]["timeout"]) > 0:
            settings.cell_timeout = float(config[section]["timeout"])
            break
    strict = config.get("Dlcourse", {}).get("strict_tests", [])
    settings.strict_tests = True if strict is True else [str(a) for a in strict] if isinstance(strict, (list, tuple)) \
        else []
    return settings
