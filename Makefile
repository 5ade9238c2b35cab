# editone: every target runs `setup` first; `setup` is idempotent and fast
# once done. See README.md.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
SETUP_STAMP := $(VENV)/.editone-setup
DEFAULT_MODEL := .cache/models/digiface-dcgan.safetensors
DEFAULT_REFERENCE := .cache/models/digiface-dcgan.reference.safetensors
FACE_DETECTOR := .cache/models/mtcnn.safetensors
FACENET_WHEEL := .cache/wheels/facenet_pytorch-2.6.0-py3-none-any.whl
FACENET_WHEEL_SHA256 := ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca
TEST_REFERENCE_STAMP := $(VENV)/.editone-test-reference
TEST_IMAGES_STAMP := .cache/test-data/.scikit-image-0.26.0
PREFIX ?= /usr/local
CARGO ?= cargo
CARGO_FLAGS := --release --locked
LIB := target/release/libeditone.so
TEST_PREFIX := build/test-prefix
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

.PHONY: all setup build test lint rust-tests c-tests gimp-tests gimp3-tests studio-tests slurm-tests header-check install install-gimp demo studio bench bench-slurm clean

all: build

# A project-local virtual environment with the pinned torch wheel; libtorch
# is its torch/ folder, linked as .venv/libtorch for build.rs and tch.
setup: $(SETUP_STAMP) $(DEFAULT_MODEL) $(FACE_DETECTOR) $(TEST_REFERENCE_STAMP) $(TEST_IMAGES_STAMP)

$(SETUP_STAMP): tools/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	ln -sfn "$$($(VENV)/bin/python -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("torch").origin))')" $(VENV)/libtorch
	touch $@

# The default model: the DCGAN face generator inside the PyPI wheel
# gan-face-generate 1.1.1 (MIT), converted once and verified by checksum.
$(DEFAULT_MODEL): tools/convert_default_model.py $(SETUP_STAMP)
	$(VENV)/bin/python -m pip download --quiet --disable-pip-version-check --no-deps gan-face-generate==1.1.1 -d .cache/wheels
	$(VENV)/bin/python tools/convert_default_model.py .cache/wheels/gan_face_generate-1.1.1-py3-none-any.whl $@ $(DEFAULT_REFERENCE)

# The face detector: MTCNN's three nets from the PyPI wheel facenet-pytorch
# 2.6.0 (MIT), converted once and verified by checksum.
$(FACENET_WHEEL): | $(SETUP_STAMP)
	$(VENV)/bin/python -m pip download --quiet --disable-pip-version-check --no-deps facenet-pytorch==2.6.0 -d .cache/wheels
	echo "$(FACENET_WHEEL_SHA256)  $@" | sha256sum --check --quiet

$(FACE_DETECTOR): tools/convert_mtcnn.py $(FACENET_WHEEL)
	$(VENV)/bin/python tools/convert_mtcnn.py $(FACENET_WHEEL) $@

# The tests' references (tools/requirements-test.txt): facenet-pytorch's own
# MTCNN, installed from the checked wheel without its outdated pins.
$(TEST_REFERENCE_STAMP): tools/requirements-test.txt $(FACENET_WHEEL) $(SETUP_STAMP)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/requirements-test.txt
	echo "$(FACENET_WHEEL_SHA256)  $(FACENET_WHEEL)" | sha256sum --check --quiet
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps $(FACENET_WHEEL)
	touch $@

# Test photos, never committed: the astronaut and scikit-image's other
# sample images, from the one scikit-image wheel every machine downloads.
$(TEST_IMAGES_STAMP): tools/extract_test_images.py $(SETUP_STAMP)
	$(VENV)/bin/python -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
	  --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311 scikit-image==0.26.0 -d .cache/wheels
	$(VENV)/bin/python tools/extract_test_images.py \
	  .cache/wheels/scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl .cache/test-data
	touch $@

build: setup
	$(CARGO) build $(CARGO_FLAGS)

FIXTURES := $(abspath tests/fixtures/stylegan2)
CLI_CFLAGS := -std=c11 -Wall -Wextra -Werror -O2
TEST_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wno-missing-field-initializers -Werror -g -fsanitize=address,undefined -fno-omit-frame-pointer
TEST_PKG = PKG_CONFIG_PATH=$(TEST_PREFIX)/lib/pkgconfig pkg-config
# AddressSanitizer with LeakSanitizer, no suppressions.
TEST_ENV := ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# Rust tests, then C tests against an installed copy, the studio page in
# headless Chromium, then the header check.
test: lint rust-tests c-tests gimp-tests gimp3-tests studio-tests slurm-tests header-check

# Clippy on everything, warnings as errors, and every unsafe operation in
# its own unsafe block (the library denies unsafe_op_in_unsafe_fn itself).
lint: setup
	$(CARGO) clippy $(CARGO_FLAGS) --workspace --all-targets -- -D warnings -W unsafe_op_in_unsafe_fn

rust-tests: setup
	$(CARGO) test $(CARGO_FLAGS)

c-tests: setup
	$(MAKE) --no-print-directory install PREFIX=$(TEST_PREFIX)
	@set -e; \
	for t in test_api tune; do \
	  cc $(TEST_CFLAGS) tests/c/$$t.c $$($(TEST_PKG) --cflags --libs editone) -lpthread -lm -o build/test_$${t#test_}; done; \
	group=$$(mktemp -d); trap 'rm -rf "$$group"' EXIT; \
	$(CARGO) run $(CARGO_FLAGS) --quiet --example synthetic_group -- "$$group/group.png" 1 5 640x480 >/dev/null; \
	$(TEST_ENV) build/test_api "$(FIXTURES)" "$$group/group.png"; \
	$(TEST_ENV) build/test_tune "$(FIXTURES)" "$$group/group.png"
	bash tests/cli/run.sh $(TEST_PREFIX)/bin/editone
	bash tests/cpp/run.sh $(TEST_PREFIX)
	bash tests/photo-managers/run.sh $(TEST_PREFIX)/bin/editone

# The GIMP 2.10 plug-in, built against an installed prefix when GIMP's
# development files are present (Debian: libgimp2.0-dev).
HAVE_GIMP := $(shell pkg-config --exists gimpui-2.0 && echo yes)
# GTK 2 headers (GIMP 2.10's toolkit) use GLib types GLib now marks deprecated.
GIMP_CFLAGS := -std=gnu11 -Wall -Wextra -Wno-missing-field-initializers -Wno-deprecated-declarations -Werror -O2

define build_gimp_plugin
	cc $(GIMP_CFLAGS) host-examples/gimp/editone-gimp.c host-examples/gimp/editone-shared.c $$(pkg-config --cflags gimpui-2.0) \
	    $$(PKG_CONFIG_PATH=$(1)/lib/pkgconfig pkg-config --cflags --libs editone) $$(pkg-config --libs gimpui-2.0) -o $(2)
endef

gimp-tests: c-tests
	@if [ "$(HAVE_GIMP)" != yes ] || ! command -v gimp-console-2.10 >/dev/null; then \
	  echo "!!!!! SKIPPED: GIMP 2.10 or libgimp2.0-dev is not installed; the plug-in is NOT tested !!!!!"; exit 0; fi; \
	set -e; $(call build_gimp_plugin,$(TEST_PREFIX),build/editone-gimp); \
	bash tests/gimp/run.sh $(TEST_PREFIX)/bin/editone build/editone-gimp

# editone studio's page, end to end in headless Chromium (Debian: chromium)
# with playwright-core from npm; tests/studio/run.sh says SKIPPED loudly
# without Chromium. STUDIO_TEST_FLAGS=--update-screenshot rewrites docs/studio.png.
studio-tests: c-tests
	EDITONE_CLI=$(abspath $(TEST_PREFIX))/bin/editone $(CARGO) test $(CARGO_FLAGS) -p editone-studio
	$(CARGO) build $(CARGO_FLAGS) -p editone-studio
	bash tests/studio/run.sh target/release/editone-studio $(TEST_PREFIX)/bin/editone $(STUDIO_TEST_FLAGS)

# editone apply as Slurm array jobs on a real Slurm started on this machine
# (as root; Debian: slurmctld slurmd slurm-client munge, which .ci/run
# installs): byte-for-byte parity with one process, merge, kill and --resume.
slurm-tests: c-tests
	bash tests/slurm/run.sh $(TEST_PREFIX)/bin/editone

# The GIMP 3 plug-in in a real GIMP 3: Debian 13's, in a root that
# tools/trixie-root.sh builds with mmdebstrap and caches under .cache/ (as
# root; .ci/run installs mmdebstrap). It fails if the root cannot be built.
gimp3-tests: c-tests
	bash tests/gimp/run3.sh $(TEST_PREFIX)/bin/editone

# Builds the plug-in for the GIMP installed here (after make install) into
# its profile: GIMP 3 (pkg-config gimp-3.0, ~/.config/GIMP/3.0) first, else
# GIMP 2.10 (gimp-2.0, ~/.config/GIMP/2.10); GIMP_VERSION=2|3 chooses.
GIMP_VERSION ?= $(shell pkg-config --exists gimp-3.0 && echo 3 || { pkg-config --exists gimp-2.0 && echo 2; })
GIMP_PLUGIN_DIR ?= $(HOME)/.config/GIMP/$(if $(filter 3,$(GIMP_VERSION)),3.0,2.10)/plug-ins
install-gimp: install
	@case "$(GIMP_VERSION)" in 2|3) ;; *) echo "install-gimp: no GIMP development files found (Debian: libgimp-3.0-dev or libgimp2.0-dev); GIMP_VERSION=2|3 chooses"; exit 1;; esac
	install -d $(GIMP_PLUGIN_DIR)/editone
	$(if $(filter 3,$(GIMP_VERSION)),PKG_CONFIG_PATH=$(PREFIX)/lib/pkgconfig$${PKG_CONFIG_PATH:+:$$PKG_CONFIG_PATH} \
	    bash tools/build-gimp3-plugin.sh host-examples/gimp $(GIMP_PLUGIN_DIR)/editone/editone,$(call build_gimp_plugin,$(PREFIX),$(GIMP_PLUGIN_DIR)/editone/editone))

# build.rs regenerates include/editone.h; a difference from the committed
# file means the commit forgot the regenerated header.
header-check: build
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  git diff --exit-code --stat -- include/editone.h || { echo "include/editone.h differs from the generated header: commit it"; exit 1; }; \
	fi

# The library, header and pkg-config file, then the editone command built
# from them as any host would build against an installed copy.
install: build
	install -d $(PREFIX)/lib $(PREFIX)/include $(PREFIX)/lib/pkgconfig $(PREFIX)/bin
	install -m 0755 $(LIB) $(PREFIX)/lib/libeditone.so
	install -m 0644 include/editone.h $(PREFIX)/include/editone.h
	sed -e 's|@PREFIX@|$(abspath $(PREFIX))|' -e 's|@VERSION@|$(VERSION)|' \
	    tools/editone.pc.in > $(PREFIX)/lib/pkgconfig/editone.pc
	cc $(CLI_CFLAGS) host-examples/cli/*.c \
	    $$(PKG_CONFIG_PATH=$(PREFIX)/lib/pkgconfig pkg-config --cflags --libs editone) -lm -o $(PREFIX)/bin/editone

# The interactive page on the default model (README, "Try it interactively");
# STUDIO_ARGS passes options, e.g. STUDIO_ARGS="--model G.pkl --port 8080".
studio: setup
	$(CARGO) build $(CARGO_FLAGS) -p editone-studio
	target/release/editone-studio $(STUDIO_ARGS)

# The main job on the default model: writes demo/contact-sheet.png and
# demo/strength-sweep.png.
demo: setup
	$(CARGO) run $(CARGO_FLAGS) --quiet --example demo

# Benchmarks, never asserted: `editone bench` beside the PyTorch baseline
# (benches/compare.py) on the default model, both fixtures and a random
# config-f 256x256 (light settings: CPU), then drag and inversion timings
# (Rust), the CPU Winograd convolution against the direct one, the fast
# preset's convergence on the default model, and MTCNN face detection on a
# 1280x886 photo beside facenet-pytorch's (2 threads).
BENCH_PREFIX := build/bench-prefix
bench: build
	$(MAKE) --no-print-directory install PREFIX=$(CURDIR)/$(BENCH_PREFIX)
	$(VENV)/bin/python benches/compare.py $(BENCH_PREFIX)/bin/editone --model default
	$(VENV)/bin/python benches/compare.py $(BENCH_PREFIX)/bin/editone --model tiny64 --iterations 100 --count 200
	$(VENV)/bin/python benches/compare.py $(BENCH_PREFIX)/bin/editone --model cond128 --iterations 20 --count 50
	$(VENV)/bin/python benches/compare.py $(BENCH_PREFIX)/bin/editone --model config-f-256 --batches 1,8 \
	  --iterations 3 --count 0 --seconds 6 --rounds 2
	$(CARGO) run $(CARGO_FLAGS) --quiet --example bench
	$(CARGO) test $(CARGO_FLAGS) --quiet --lib winograd_speed -- --ignored --nocapture
	$(VENV)/bin/python tools/bench_default.py $(LIB)
	$(CARGO) run $(CARGO_FLAGS) --quiet --example bench_detect
	$(VENV)/bin/python benches/tune_compare.py $(LIB)

# 10,000 images as 4 Slurm array tasks against one process (a report, never
# asserted; as root, like slurm-tests): time, peak memory per task, no image twice.
bench-slurm: build
	$(MAKE) --no-print-directory install PREFIX=$(CURDIR)/$(BENCH_PREFIX)
	bash benches/slurm.sh $(BENCH_PREFIX)/bin/editone $(BENCH_SLURM_ARGS)

clean:
	$(CARGO) clean
	rm -rf build demo
