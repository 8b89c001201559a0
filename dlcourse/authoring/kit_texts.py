"""The student kit's texts: its requirements (ranges, not the grader's pins), pyproject.toml,
environment.yml and README, rendered from ``dlcourse/authoring/templates/kit/``, and the measured facts the
README states (download sizes, what was checked where). :mod:`dlcourse.authoring.kit` writes them.

Apart from kit.py so that each stays under the course's module size: this module says *what* students are
told, kit.py *which files* they get and that no secret is among them.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..core.course import STUDENT_KIT_MARKER, CourseLayout
from ..core.templates import render

#: Files of the package that are not modules but that the students' side reads.
PACKAGE_DATA = ("jupyter_config/labconfig/page_config.json",)
KIT_DISTRIBUTION = "dlcourse-student"
#: The kit's texts (README, pyproject, requirements, environment.yml) are templates of this package.
TEMPLATES = "dlcourse.authoring"
#: The oldest PyTorch (and its torchvision) the kit allows; `make oldest-torch` checks the notebooks with it.
OLDEST_TORCH = "2.13.0"
OLDEST_TORCHVISION = "0.28.0"
#: The kit's PyTorch ranges: from the oldest checked to the grader's release line (2.14, torchvision 0.29).
TORCH_RANGE = f">={OLDEST_TORCH},<2.15"
TORCHVISION_RANGE = f">={OLDEST_TORCHVISION},<0.30"
#: Python 3.10 cannot install the course's packages (contourpy, ipython 9); 3.11-3.14 are checked.
REQUIRES_PYTHON = ">=3.11"


def student_requirements() -> str:
    """The kit's ``requirements.txt``: what the course needs, as ranges (never the grader's whole lock)."""
    return render(TEMPLATES, "kit/requirements.txt.j2", torch_range=TORCH_RANGE,
                  torchvision_range=TORCHVISION_RANGE)


#: Packages that exist for one platform only (NVIDIA's CUDA libraries, Triton: Linux x86-64; pywin32 and
#: pywinpty: Windows; appnope and PyObjC: macOS; jeepney and SecretStorage: Linux's D-Bus). A requirement
#: of one of them needs an environment marker, or the platforms without it cannot install the kit.
SINGLE_PLATFORM = re.compile(r"nvidia-.*|cuda-.*|triton|pywin32|pywinpty|winpty|appnope|pyobjc(-.*)?|jeepney"
                             r"|secretstorage|uvloop", re.IGNORECASE)


def unmarked_single_platform(requirements: str) -> list[str]:
    """The requirement lines of ``requirements`` naming a single-platform package without a marker."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return [line for line in requirement_lines(requirements)
            if not line.startswith("-") and (requirement := Requirement(line)).marker is None
            and SINGLE_PLATFORM.fullmatch(canonicalize_name(requirement.name))]


def requirement_lines(requirements: str) -> list[str]:
    """The requirement lines of a requirements file (no comments, no blank lines)."""
    return [line.split(" #")[0].strip() for line in requirements.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _pyproject(layout: CourseLayout) -> str:
    import tomllib

    course = tomllib.loads((layout.root / "pyproject.toml").read_text())["project"]
    return render(TEMPLATES, "kit/pyproject.toml.j2", name=KIT_DISTRIBUTION, version=course.get("version", "0.1.0"),
                  requires_python=REQUIRES_PYTHON, dependencies=requirement_lines(student_requirements()),
                  package_data=[*PACKAGE_DATA, STUDENT_KIT_MARKER])


def _environment() -> str:
    return render(TEMPLATES, "kit/environment.yml.j2", name=KIT_DISTRIBUTION,
                  requirements=requirement_lines(student_requirements()))


#: Download sizes of the kit's set-up line, measured by ``make platforms`` (``scripts/kit_platforms.py
#: --sizes``: the Content-Length of each wheel pip chose for Python 3.12), and the wheel on this disk.
DOWNLOADS_HOW = "measured with pip's choice of wheels for Python 3.12 by `make platforms` in the course repository"
DOWNLOADS = (
    {"platform": "macOS, Apple silicon", "size": "270 MB", "largest": "torch 127 MB, playwright 49 MB"},
    {"platform": "Windows, x86-64", "size": "270 MB", "largest": "torch 124 MB, playwright 43 MB"},
    {"platform": "Linux x86-64, PyPI's PyTorch", "size": "1,035 MB",
     "largest": "torch 555 MB, triton 248 MB, NVIDIA's CUDA libraries, playwright 54 MB"},
    {"platform": "Linux x86-64, CPU-only PyTorch (below)", "size": "about 370 MB",
     "largest": "torch's CPU-only wheel (192 MB for 2.13.0+cpu) + 177 MB for the rest (measured)"},
)
#: What was checked on each platform, and how: the README's last table claims no more than this.
CHECKS = (
    {"platform": "Linux x86-64, Python 3.11 (the grader's machine)",
     "what": "every release notebook's public checks and `dlcourse handin`, with the grader's torch",
     "how": "the course's test suite (`make test`): runs them"},
    {"platform": "Linux x86-64, Python 3.11, torch 2.13.0 (the oldest allowed)",
     "what": "every release notebook: public checks fail on it blank, each named with its message, and pass "
             "with the reference solution; `dlcourse handin` (without PDF)",
     "how": "`make oldest-torch` in the course repository, in a second environment: 9 of 9"},
    {"platform": "macOS arm64, Windows amd64, Linux x86-64 × Python 3.11–3.14",
     "what": "`requirements.txt` resolves to binary wheels (torch 2.14.1 on all 12)",
     "how": "`make platforms`: pip's dry-run for each platform; nothing installed or run there"},
    {"platform": "macOS (MPS), NVIDIA GPU",
     "what": "`pick_device()` chooses CUDA, then MPS, then the CPU",
     "how": "unit tests with a stand-in for torch's MPS and CUDA checks; no training was run on a GPU"},
    {"platform": "Windows, macOS",
     "what": "the hand-in finds Chrome, Chromium or Edge in their install folders",
     "how": "unit tests of the folders; the PDF itself was printed on Linux only"},
    {"platform": "Google Colab",
     "what": "the first cell (no-op elsewhere), the install that keeps Colab's torch, `handin()` and its download",
     "how": "tests with Colab's conditions reproduced (a stand-in `google.colab`, a `/content`-like folder, "
            "another torch); not run on Colab itself"},
    {"platform": "Intel Mac", "what": "nothing: PyTorch has no build of this course's versions for it",
     "how": "use Colab"},
)


def colab_url(repository: str, notebook: str) -> str:
    """The "Open in Colab" address of a notebook of the kit on GitHub (``release/a1/a1.ipynb``)."""
    return f"https://colab.research.google.com/github/{repository}/blob/main/{notebook}"


def _readme(release: Path, assignments: list[str], datasets: dict[str, list[str]], repository: str = "") -> str:
    from ..data import CIFAR10_FOLDER, MNIST_FILES
    from ..student.handin import EXIT_NO_PDF, MAX_GROUP_SIZE, NAMES_EXAMPLE

    notebooks = {name: [p.name for p in sorted((release / name).glob("*.ipynb"))] for name in assignments}
    links = [{"assignment": name, "links": [{"notebook": notebook,
                                             "url": colab_url(repository, f"release/{name}/{notebook}")}
                                            for notebook in notebooks[name]]}
             for name in assignments] if repository else []
    return render(
        TEMPLATES, "kit/README.md.j2", name=KIT_DISTRIBUTION, pythons="3.11 to 3.14",
        downloads=DOWNLOADS, downloads_how=DOWNLOADS_HOW, oldest_torch=OLDEST_TORCH,
        torch_range=TORCH_RANGE, torchvision_range=TORCHVISION_RANGE,
        colab_links=links, kit_folder=release.parent.name,
        assignments=[{"assignment": name, "notebooks": notebooks[name]} for name in assignments],
        datasets_used="; ".join(f"{name} for {', '.join(f'`{n}`' for n in used)}" for name, used in datasets.items()),
        mnist_files=", ".join(f"`{name}`" for name in MNIST_FILES), cifar10_folder=CIFAR10_FOLDER,
        names_example=NAMES_EXAMPLE, max_group_size=MAX_GROUP_SIZE, exit_no_pdf=EXIT_NO_PDF,
        checks_intro="The course's maintainers checked these; anything not in this table was not tried.",
        checks=CHECKS)
