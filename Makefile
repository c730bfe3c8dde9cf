# Every target does its own set-up on a fresh machine: a .venv with the CPU torch wheel first
# (a plain `torch` requirement would pull a multi-GB CUDA build), then the project.
PY := .venv/bin/python
PIP := .venv/bin/pip
TORCH := torch==2.13.0

.PHONY: setup test test-slow demo clean

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[test]'
	touch $@

setup: .venv/.installed

# The suite (~8 min on 2 cores). test-slow rebuilds the ShapesWorld models from scratch and
# checks the quality bars (~16 min); CI runs both.
test: setup
	RAY_AUTH_MODE=disabled $(PY) -m pytest -q -m "not slow" tests

test-slow: setup
	RAY_AUTH_MODE=disabled $(PY) -m pytest -q -m slow tests

demo: setup
	$(PY) -m rlaifv_ray.cli demo

clean:
	rm -rf .venv .pytest_cache
