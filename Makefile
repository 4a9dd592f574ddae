# Set-up and entry points. Each target installs what it needs by itself.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lit pytest bench cross-tools

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

demo: $(STAMP)
	$(PY) examples/demo.py

# The cross tests build AArch64 and RISC-V libraries and run them under
# qemu-user: Debian's cross compilers with their sysroots, and qemu. Installed
# when one is missing (CI runs as root; elsewhere through sudo).
CROSS_FILES := /usr/bin/qemu-aarch64 /usr/bin/qemu-riscv64 /usr/bin/aarch64-linux-gnu-gcc \
	/usr/bin/riscv64-linux-gnu-gcc /usr/aarch64-linux-gnu/include/stdio.h /usr/riscv64-linux-gnu/include/stdio.h
CROSS_PKGS := qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-riscv64-linux-gnu libc6-dev-riscv64-cross
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

cross-tools:
	@for f in $(CROSS_FILES); do [ -e $$f ] || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing $(CROSS_PKGS) for the cross tests"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive sh -c \
	    'apt-get update -qq && apt-get install -y -qq --no-install-recommends $(CROSS_PKGS) >/dev/null'; \
	fi

test: $(STAMP) cross-tools
	$(PY) examples/make_models.py
	$(VENV)/bin/lit -sv test
	$(PY) -m pytest -q -n auto test/python

bench: $(STAMP)
	$(PY) examples/make_models.py
	$(PY) benchmarks/models.py
