"""The kit's requirements install on every platform: ranges, and no single-platform package unmarked.

Kernel-free and offline. ``make platforms`` asks pip itself (scripts/kit_platforms.py, needs the index).
"""

from __future__ import annotations

import random
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from dlcourse.authoring import kit as kit_lib
from dlcourse.core.course import CourseLayout

ROOT = Path(__file__).resolve().parents[2]
MARKERS = ('sys_platform == "linux"', 'platform_system == "Windows"', 'sys_platform == "darwin"',
           'platform_machine == "x86_64" and sys_platform == "linux"')
SINGLE_PLATFORM_NAMES = ("nvidia-cudnn-cu13", "nvidia-nccl-cu12", "cuda-bindings", "cuda-pathfinder", "triton",
                         "pywin32", "pywinpty", "appnope", "pyobjc-core", "jeepney", "SecretStorage")


def test_the_kits_requirements_have_no_unmarked_single_platform_package():
    assert kit_lib.unmarked_single_platform(kit_lib.student_requirements()) == []


def test_the_check_finds_the_graders_lock_unmarked_cuda_and_triton_pins():
    """The grader's whole lock, which the kit once shipped as its requirements, fails the check."""
    found = kit_lib.unmarked_single_platform((ROOT / "requirements.lock").read_text())
    names = {Requirement(line).name.lower() for line in found}
    assert "triton" in names and any(n.startswith("nvidia-") for n in names) and any(n.startswith("cuda-")
                                                                                     for n in names)
    assert len(found) >= 19


@pytest.mark.parametrize("seed", range(20))
def test_a_single_platform_requirement_passes_with_a_marker_and_fails_without(seed):
    rng = random.Random(seed)
    name = rng.choice(SINGLE_PLATFORM_NAMES)
    spelled = "".join(c.upper() if rng.random() < 0.3 else c for c in name).replace("-", rng.choice("-_."))
    version = f"=={rng.randrange(1, 30)}.{rng.randrange(10)}"
    marked = f"{spelled}{version} ; {rng.choice(MARKERS)}"
    plain = f"{spelled}{version}"
    others = ["numpy>=2.4,<3", "Jinja2>=3.1,<4"]
    assert kit_lib.unmarked_single_platform("\n".join([*others, marked])) == []
    assert kit_lib.unmarked_single_platform("\n".join([*others, plain, "# " + plain])) == [plain]


def test_the_kits_requirements_are_ranges_that_hold_the_graders_and_the_oldest_torch():
    lock = {Requirement(line).name.lower(): Version(str(Requirement(line).specifier).removeprefix("=="))
            for line in kit_lib.requirement_lines((ROOT / "requirements.lock").read_text())}
    for line in kit_lib.requirement_lines(kit_lib.student_requirements()):
        requirement = Requirement(line)
        assert not any(spec.operator == "==" for spec in requirement.specifier), f"{line}: a pin, not a range"
        assert lock[requirement.name.lower()] in requirement.specifier, f"{line} excludes the grader's version"
    torch = next(Requirement(line) for line in kit_lib.requirement_lines(kit_lib.student_requirements())
                 if line.startswith("torch") and not line.startswith("torchvision"))
    assert Version(kit_lib.OLDEST_TORCH) in torch.specifier and Version("2.12.1") not in torch.specifier


def test_pyproject_and_environment_yml_declare_the_same_requirements():
    lines = kit_lib.requirement_lines(kit_lib.student_requirements())
    pyproject = tomllib.loads(kit_lib._pyproject(CourseLayout(ROOT)))["project"]
    assert pyproject["dependencies"] == lines
    assert pyproject["requires-python"] == kit_lib.REQUIRES_PYTHON
    environment = yaml.safe_load(kit_lib._environment())
    assert next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict)) == lines + ["-e ."]


def test_the_graders_constraints_are_its_lock():
    constraints = kit_lib._grader_constraints(CourseLayout(ROOT))
    assert kit_lib.requirement_lines(constraints) == kit_lib.requirement_lines((ROOT / "requirements.lock").read_text())
