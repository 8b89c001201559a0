# The two commands of the README. Each installs what it needs first.
.PHONY: setup demo test bench

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/python -m dlcourse demo

test: setup
	.venv/bin/python -m pytest -n 2 --durations=40 tests

bench: setup
	.venv/bin/python bench/grade_speed.py
