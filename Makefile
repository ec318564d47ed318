# MorphoSeg: two commands do everything on a fresh machine.
#   make demo   install what is missing, build release, train on the embedded phantom, export a result
#   make test   install what is missing, build, run the whole suite (numeric tests in release)
SWIFT      ?= swift
APT_PKGS   := libnifti2-dev zlib1g-dev
# Open MPI for data-parallel training (`mpirun -np N morphoseg train`); `make test` installs it so
# the 2-rank tests run. Builds without it work (Package.swift leaves the MPI target out).
MPI_APT_PKGS := libopenmpi-dev openmpi-bin
# Headless Chromium renders report.html in the tests (ReportRenderingTests; skipped without it).
# Installing it takes about a minute (apt-get install -y chromium: 65 s on the Debian 12 dev machine).
REPORT_APT_PKGS := chromium
# MORPHOSEG_MPI=1 when Open MPI's header is installed, checked when the recipe runs (after deps):
# SwiftPM caches the evaluated Package.swift per environment, so without it an Open MPI installed
# after a first build would go unnoticed.
MPI_ENV = MORPHOSEG_MPI=$$(ls /usr/lib/*/openmpi/include/mpi.h >/dev/null 2>&1 && echo 1 || echo 0)
BIN        := .build/release/morphoseg
DEMO_DIR   ?= runs/demo

.PHONY: all deps build test demo bench clean

all: build

## deps: install the Debian packages MorphoSeg links against, when missing
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then \
	    echo "installing with sudo:$$missing"; \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "error: MorphoSeg needs the Debian packages$$missing; run as root: apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi

## build: release build of the morphoseg command, compiled for this CPU
build: deps
	$(SWIFT) build -c release --product morphoseg

## test: the whole suite, in release so the numeric tests run at full speed
test: APT_PKGS += $(MPI_APT_PKGS) $(REPORT_APT_PKGS)
# The binaries the tests run are built with the tests' flags, so the three steps share one build.
TEST_FLAGS := -c release -Xswiftc -enable-testing
test: deps
	$(MPI_ENV) $(SWIFT) build $(TEST_FLAGS) --product morphoseg
	$(MPI_ENV) $(SWIFT) build $(TEST_FLAGS) --product dataparallel-probe
	$(MPI_ENV) $(SWIFT) test $(TEST_FLAGS)

## demo: train on the embedded synthetic phantom and export a segmentation
demo: build
	$(BIN) demo --output $(DEMO_DIR)

## bench: the benchmark command (all groups)
bench: build
	$(BIN) bench

clean:
	rm -rf .build runs
