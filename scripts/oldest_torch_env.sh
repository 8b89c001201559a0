#!/usr/bin/env bash
# `make oldest-torch-env`: a second virtual environment, .venv-oldest-torch, with the oldest PyTorch the
# student kit allows (dlcourse.authoring.kit.OLDEST_TORCH, its torchvision) and the kit's requirements
# otherwise, plus this course's package (no dependencies of its own: only what the kit declares).
# torch and torchvision come as a matching pair: with TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
# PyTorch's CPU-only builds of both (its torch 2.13.0 wheel: 192 MB); without it PyPI's, which on Linux x86-64 are CUDA builds
# with NVIDIA's libraries (GBs). The CPU-only torch wheel alone is not enough: PyPI's torchvision does not
# import beside it ("operator torchvision::nms does not exist"). Safe to run again: it installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-oldest-torch
PYTHON=${PYTHON:-python3}
read -r torch torchvision < <(.venv/bin/python -c \
  'from dlcourse.authoring.kit import OLDEST_TORCH as t, OLDEST_TORCHVISION as v; print(t, v)')
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
requirements=$(mktemp)
trap 'rm -f "$requirements"' EXIT
.venv/bin/python -c 'from dlcourse.authoring.kit import student_requirements; print(student_requirements())' \
  > "$requirements"
stamp="$VENV/.requirements.sha256"
want=$(cat "$requirements" pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  started=$(date +%s)
  # the pair first, from one index (no pip config, no find-links: a local CPU-only torch wheel would not match
  # PyPI's torchvision)
  env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null "$VENV/bin/pip" install -q --disable-pip-version-check \
    "torch==$torch" \
    "torchvision==$torchvision" ${TORCH_CPU_INDEX:+--index-url "$TORCH_CPU_INDEX" --extra-index-url https://pypi.org/simple}
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$requirements" \
    -c <(printf 'torch==%s\ntorchvision==%s\n' "$torch" "$torchvision")
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e .
  "$VENV/bin/python" -m playwright --version >/dev/null
  "$VENV/bin/python" -c 'import torch, torchvision'  # a pair that does not import stops here, unstamped
  echo "$want" > "$stamp"
  echo "oldest-torch-env: installed in $(( $(date +%s) - started )) s"
fi
"$VENV/bin/python" -c 'import torch, torchvision; print(f"oldest-torch-env: torch {torch.__version__}, torchvision {torchvision.__version__}")'
