"""environment.yml (conda), requirements.lock (pip) and pyproject.toml agree."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = None

ROOT = Path(__file__).resolve().parents[2]

# conda-forge names of packages whose PyPI name differs (used if a package is
# ever moved from the pip section to conda's own list).
CONDA_TO_PYPI = {"pytorch": "torch", "pyyaml": "pyyaml", "pyzmq": "pyzmq"}
NOT_PACKAGES = {"python", "pip"}


def normalize(name: str) -> str:
    """PEP 503: ``Jinja2`` == ``jinja2``, ``jupyter_client`` == ``jupyter-client``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*==\s*([^\s;]+)", line)
        assert match, f"not pinned with ==: {line!r}"
        name = normalize(match.group(1))
        assert name not in out, f"{name} listed twice"
        out[name] = match.group(2)
    return out


@pytest.fixture(scope="module")
def lock() -> dict[str, str]:
    return pins((ROOT / "requirements.lock").read_text().splitlines())


@pytest.fixture(scope="module")
def conda() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _conda_parts(conda):
    plain, pip = [], []
    for entry in conda["dependencies"]:
        if isinstance(entry, dict):
            pip += entry.get("pip", [])
        else:
            plain.append(str(entry))
    return plain, pip


def test_environment_is_named_dlcourse(conda):
    assert conda["name"] == "dlcourse"


def test_conda_and_pip_name_the_same_packages_and_versions(conda, lock):
    plain, pip = _conda_parts(conda)
    in_conda = pins(pip)
    for entry in plain:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(?:=+\s*([^\s=]+))?.*", entry)
        name = normalize(match.group(1))
        if name in NOT_PACKAGES:
            continue
        name = CONDA_TO_PYPI.get(name, name)
        assert match.group(2), f"conda package {entry!r} has no version"
        assert name not in in_conda, f"{name} is both a conda and a pip package in environment.yml"
        in_conda[name] = match.group(2)
    missing = sorted(set(lock) - set(in_conda))
    extra = sorted(set(in_conda) - set(lock))
    differ = sorted(f"{n}: lock {lock[n]}, conda {in_conda[n]}" for n in set(lock) & set(in_conda)
                    if lock[n] != in_conda[n])
    assert not missing, f"in requirements.lock but not in environment.yml: {missing}"
    assert not extra, f"in environment.yml but not in requirements.lock: {extra}"
    assert not differ, f"versions differ: {differ}"


def test_conda_python_meets_requires_python(conda):
    plain, _ = _conda_parts(conda)
    python = [e for e in plain if re.match(r"python\s*=", e)]
    assert python, "environment.yml does not pin python"
    version = tuple(int(x) for x in re.findall(r"\d+", python[0])[:2])
    text = (ROOT / "pyproject.toml").read_text()
    minimum = tuple(int(x) for x in re.search(r'requires-python\s*=\s*">=(\d+)\.(\d+)"', text).groups())
    assert version >= minimum


def test_pyproject_dependencies_are_the_locked_versions(lock):
    text = (ROOT / "pyproject.toml").read_text()
    if tomllib:
        dependencies = tomllib.loads(text)["project"]["dependencies"]
    else:
        dependencies = re.findall(r'^\s*"([^"]+==[^"]+)",?\s*$', text, re.M)
    for name, version in pins(dependencies).items():
        assert lock.get(name) == version, f"pyproject wants {name}=={version}, lock has {lock.get(name)}"
    assert "playwright" in pins(dependencies), "the hand-in PDF needs playwright"


def test_installed_direct_dependencies_are_the_locked_versions(lock):
    """The environment the tests run in is the one the lock describes."""
    text = (ROOT / "pyproject.toml").read_text()
    names = [normalize(n) for n in re.findall(r'^\s*"([A-Za-z0-9_.\-]+)==', text, re.M)]
    wrong = []
    for name in names:
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name} not installed")
            continue
        if installed.split("+")[0] != lock[name]:
            wrong.append(f"{name} {installed} (lock: {lock[name]})")
    assert not wrong, f"run scripts/setup.sh; {wrong} (python: {sys.executable})"


def test_setup_lists_the_debian_packages_the_handin_pdf_needs():
    text = (ROOT / "scripts" / "setup.sh").read_text()
    packages = re.search(r"DEBIAN_PACKAGES=\(([^)]*)\)", text).group(1).split()
    for package in ("chromium", "libjs-mathjax", "poppler-utils"):
        assert package in packages, f"scripts/setup.sh does not install {package}"
