# Two commands (README, "Install" and "Tests"):
#   make quickstart   install what is missing, then the README's quick start end to end: synthetic data,
#                     training, val.py and its [EVAL] line, a picture of the predictions
#   make test         install the test tools and the optional packages, then `ruff check .` and the tests
#                     in WORKERS pytest-xdist processes (CI runs this: .ci/run)
#   make test-paddle26  the same tests on the Paddle that `pip install paddlepaddle-gpu` gives (2.6.2): the CPU
#                     wheel in a virtualenv that reuses the installed packages (CI runs it after make test)
# Paddle is installed (the CPU wheel) only when no Paddle is importable, so an installed paddlepaddle-gpu is
# never replaced. Variables: make quickstart EPOCHS=2 DATA=/tmp/synthetic OUTPUT=/tmp/output PYTHON=python3.11
PYTHON ?= python
PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check
PADDLE_CPU ?= paddlepaddle==3.3.1
DATA ?= data/synthetic
OUTPUT ?= output
EPOCHS ?= 15
RUN = $(OUTPUT)/mpii_hourglass1_64x64
PYTEST_ARGS ?=
# The suite runs in pytest-xdist workers (one per core of the 2-core CI machine); --dist loadgroup keeps the
# tests of one xdist_group (paddle.distributed.launch's ports) in one worker. WORKERS=0: one process.
WORKERS ?= 2

.PHONY: quickstart test install install-test test-paddle26

install:
	@if $(PYTHON) -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('paddle') is None)"; then \
		echo "Paddle is installed already: kept as it is"; \
	else \
		echo "No Paddle found: installing the CPU wheel ($(PADDLE_CPU)); for a GPU install paddlepaddle-gpu first"; \
		$(PIP) $(PADDLE_CPU); \
	fi
	$(PIP) -r requirements.txt

$(DATA)/annot/valid.json:
	$(PYTHON) tools/make_synthetic_mpii.py --output $(DATA)

$(RUN)/best_model/model.pdparams: $(DATA)/annot/valid.json
	$(PYTHON) train.py --dataset_root $(DATA) --output_dir $(OUTPUT) --image_size 64 --num_stacks 1 \
		--num_features 64 --sigma 1 --optimizer adam --lr 2e-3 --epochs $(EPOCHS) --scale_factor 0.15 \
		--rotation_factor 15 --workers 1 --log_every 20

quickstart: install $(RUN)/best_model/model.pdparams
	$(PYTHON) val.py --dataset_root $(DATA) --pretrained_model $(RUN)/best_model/model.pdparams \
		--output_dir $(OUTPUT)/val
	$(PYTHON) tools/draw_predictions.py --dataset_root $(DATA) --pretrained_model \
		$(RUN)/best_model/model.pdparams --output $(OUTPUT)/quickstart_predictions.jpg
	@echo "Predictions drawn: $(OUTPUT)/quickstart_predictions.jpg"

# What CI installs (.ci/run): pytest, ruff, the optional packages, and PyTorch and TensorFlow (CPU) for the
# converters' and the training-parity tests.
install-test: install
	$(PIP) pytest pytest-xdist ruff
	$(PIP) -r requirements-extras.txt
	$(PIP) torch==2.13.0
	$(PIP) "tensorflow-cpu==2.21.*"
	$(PIP) --no-deps mmpose==1.3.2
	$(PYTHON) -c "import paddle, torch; print('paddle', paddle.__version__, '| torch', torch.__version__)"
	$(PYTHON) -c "import tensorflow as tf; print('tensorflow', tf.__version__)"

test: install-test
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest -q -rs -n $(WORKERS) --dist loadgroup $(PYTEST_ARGS)

# Paddle 2.6.2 (PyPI's newest paddlepaddle-gpu) beside the installed one: a virtualenv with --system-site-packages,
# so PyTorch, TensorFlow, pytest and the extras are reused, and only Paddle differs. Every test runs.
PADDLE26 ?= paddlepaddle==2.6.2
PADDLE26_VENV ?= .venv-paddle26
PADDLE26_PYTHON = $(PADDLE26_VENV)/bin/python

$(PADDLE26_PYTHON):
	$(PYTHON) -m venv --system-site-packages $(PADDLE26_VENV)

test-paddle26: install-test $(PADDLE26_PYTHON)
	$(PADDLE26_PYTHON) -m pip install --quiet --disable-pip-version-check $(PADDLE26)
	$(PADDLE26_PYTHON) -c "import paddle; assert paddle.__version__ == '2.6.2', paddle.__version__; print('paddle', paddle.__version__)"
	$(PADDLE26_PYTHON) -m pytest -q -rs -n $(WORKERS) --dist loadgroup $(PYTEST_ARGS)
