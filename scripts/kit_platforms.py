"""``make platforms``: can the student kit's requirements be installed on each platform and Python?

Asks pip (binary wheels only, nothing installed: ``pip install --dry-run --only-binary=:all: --platform P
--python-version V --target DIR -r requirements.txt``) for macOS on Apple silicon, Windows and Linux
x86-64 with Python 3.11-3.14, and prints the matrix: the torch each would get, or pip's reason why not.
With ``--sizes`` it also adds up the wheels' download sizes per platform (Python 3.12), read from the
``Content-Length`` of each wheel pip chose (one HEAD request per wheel).

pip evaluates environment markers (``; platform_system == "Linux"``) for the machine it runs on, even with
``--platform``: asked for macOS from Linux it would want torch's Linux-only CUDA packages. So pip runs
here with the marker environment of the target (:data:`MARKERS`), the one thing changed in it.

It needs the package index; offline it says so and exits 2 (CI may skip it then). Exit 1 when a pair
does not resolve.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlcourse.authoring.kit import student_requirements  # noqa: E402

# pip widens a macOS tag to the older macOS versions by itself, but a manylinux_2_28 tag to nothing: a Linux
# with glibc 2.28 also runs the wheels of older glibc (manylinux_2_17 = manylinux2014, ...), so all are named.
LINUX_TAGS = (*(f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)), "manylinux2014_x86_64",
              "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64")
PLATFORMS = {
    "macOS arm64": ("macosx_14_0_arm64",),
    "Windows amd64": ("win_amd64",),
    "Linux x86-64": LINUX_TAGS,
}
PYTHONS = ("3.11", "3.12", "3.13", "3.14")
#: PEP 508's marker variables as each platform's Python reports them.
MARKERS = {
    "macosx_14_0_arm64": {"os_name": "posix", "sys_platform": "darwin", "platform_system": "Darwin",
                          "platform_machine": "arm64"},
    "win_amd64": {"os_name": "nt", "sys_platform": "win32", "platform_system": "Windows",
                  "platform_machine": "AMD64"},
    "manylinux_2_28_x86_64": {"os_name": "posix", "sys_platform": "linux", "platform_system": "Linux",
                              "platform_machine": "x86_64"},
}
# pip, with its marker environment replaced by the target's (argv: markers as JSON, then pip's arguments).
PIP_WITH_MARKERS = """
import json, sys
from pip._vendor.packaging import markers
target = json.loads(sys.argv.pop(1))
host = markers.default_environment
markers.default_environment = lambda: {**host(), **target}
from pip._internal.cli.main import main
sys.exit(main())
"""


def dry_run(requirements: Path, platforms: tuple[str, ...], python: str) -> tuple[bool, dict | str]:
    """pip's report (the packages it would install) or the first line of its refusal."""
    with tempfile.TemporaryDirectory(prefix="kit-platforms-") as scratch:
        report = Path(scratch) / "report.json"
        target = {**MARKERS[platforms[0]], "python_version": python, "python_full_version": f"{python}.0"}
        command = [sys.executable, "-c", PIP_WITH_MARKERS, json.dumps(target), "install", "--dry-run", "--quiet", "--disable-pip-version-check",
                   "--only-binary=:all:", *(f"--platform={tag}" for tag in platforms), "--python-version", python,
                   "--target", str(Path(scratch) / "target"), "--report", str(report), "-r", str(requirements)]
        process = subprocess.run(command, capture_output=True, text=True)
        if process.returncode != 0:
            lines = [line for line in process.stderr.splitlines() if line.startswith("ERROR")]
            return False, (lines or process.stderr.splitlines() or ["pip failed"])[0][:160]
        return True, json.loads(report.read_text())


def versions(report: dict, *names: str) -> str:
    found = {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in report["install"]}
    return ", ".join(f"{name} {found.get(name, '-')}" for name in names)


#: What a machine without an NVIDIA GPU does not need from PyPI's Linux torch (the CPU-only build has none).
CUDA_ONLY = re.compile(r"nvidia-.*|cuda-.*|triton", re.IGNORECASE)


def download_bytes(report: dict) -> tuple[int, list[tuple[int, str]]]:
    """The total of the wheels' sizes and the sizes of each, largest first, from each wheel's Content-Length."""
    sizes = []
    for item in report["install"]:
        url = item["download_info"]["url"]
        if not url.startswith("http"):
            continue  # a wheel on this disk (pip's find-links): its size is the file's
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=60) as response:
            sizes.append((int(response.headers.get("Content-Length", 0)), item["metadata"]["name"]))
    return sum(size for size, _ in sizes), sorted(sizes, reverse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", action="store_true", help="also add up the download sizes (Python 3.12)")
    parser.add_argument("--only", choices=list(PLATFORMS), help="one platform only")
    parser.add_argument("--python", choices=PYTHONS, help="one Python only")
    args = parser.parse_args(argv)
    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=15).close()
    except OSError as error:
        print(f"platforms: the package index cannot be reached ({error}); nothing checked")
        return 2
    failed = 0
    with tempfile.TemporaryDirectory(prefix="kit-requirements-") as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(student_requirements())
        print(f"pip {subprocess.run([sys.executable, '-m', 'pip', '--version'], capture_output=True, text=True).stdout.split()[1]}; "
              f"PIP_CONSTRAINT={os.environ.get('PIP_CONSTRAINT', '(pip config)')}")
        print(f"{'platform':<15} {'python':<7} result")
        for label, platforms in PLATFORMS.items():
            if args.only and label != args.only:
                continue
            for python in (args.python,) if args.python else PYTHONS:
                ok, answer = dry_run(requirements, platforms, python)
                failed += not ok
                text = f"resolves: {versions(answer, 'torch', 'torchvision', 'numpy')}, " \
                       f"{len(answer['install'])} packages" if ok else f"FAILS: {answer}"
                print(f"{label:<15} {python:<7} {text}", flush=True)
                if ok and args.sizes and python == "3.12":
                    total, each = download_bytes(answer)
                    print(f"{'':<23} download {total / 1e6:,.0f} MB; largest: "
                          + ", ".join(f"{name} {size / 1e6:,.0f} MB" for size, name in each[:4]), flush=True)
                    cuda = sum(size for size, name in each if CUDA_ONLY.fullmatch(name) or name == "torch")
                    if any(CUDA_ONLY.fullmatch(name) for _, name in each):
                        print(f"{'':<23} of which torch with its CUDA libraries and triton {cuda / 1e6:,.0f} MB; "
                              f"the rest {(total - cuda) / 1e6:,.0f} MB", flush=True)
    pairs = (1 if args.python else len(PYTHONS)) * (1 if args.only else len(PLATFORMS))
    print(f"{pairs - failed} of {pairs} (platform, Python) pairs resolve")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
