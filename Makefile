# The two commands of the README. Each installs what it needs first.
.PHONY: setup demo test bench platforms oldest-torch-env oldest-torch

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/python -m dlcourse demo

test: setup
	.venv/bin/python -m pytest -n 2 --durations=40 tests

bench: setup
	.venv/bin/python bench/grade_speed.py

# The student kit's requirements on macOS arm64, Windows and Linux x Python 3.11-3.14 (pip's dry-run;
# needs the package index, exit 2 offline).
platforms: setup
	.venv/bin/python scripts/kit_platforms.py --sizes

# A second environment with the oldest torch the kit allows, and every release notebook's public checks
# and hand-in under it (tests/student/test_kit.py and tests/grader do the same under the grader's torch).
oldest-torch-env: setup
	bash scripts/oldest_torch_env.sh

oldest-torch: oldest-torch-env
	.venv-oldest-torch/bin/python scripts/public_checks_everywhere.py
