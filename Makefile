# Every target does its own set-up on a fresh machine: a .venv with the CPU torch wheel first
# (a plain `torch` requirement would pull a multi-GB CUDA build), then the project.
PY := .venv/bin/python
PIP := .venv/bin/pip
TORCH := torch==2.13.0

.PHONY: setup test demo clean

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[test]'
	touch $@

setup: .venv/.installed

test: setup
	RAY_AUTH_MODE=disabled $(PY) -m pytest -q tests

demo: setup
	$(PY) -m rlaifv_ray.cli demo

clean:
	rm -rf .venv .pytest_cache
