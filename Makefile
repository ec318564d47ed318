# MorphoSeg: two commands do everything on a fresh machine.
#   make demo   install what is missing, build release, train on the embedded phantom, export a result
#   make test   install what is missing, build, run the whole suite (numeric tests in release)
#   make fuzz   run each libFuzzer target for FUZZ_SECONDS (Tests/Fuzz/README.md)
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

.PHONY: all deps build test demo bench build-avx2 test-avx2 bench-avx2 fuzz clean

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

## build-avx2 / test-avx2 / bench-avx2: the same, compiled for AVX2 + FMA without AVX-512
## (`x86-64-v3`), so that an AVX-512 machine measures and tests the kernels' AVX2 register blocks
## too (they follow the compiled code, VectorRegisters). Own build folder: SwiftPM keeps one setting's
## products per folder, and .build/release/morphoseg stays native. `morphoseg bench` names the ISA
## the binary was compiled for in its header. BENCH_ARGS picks groups, e.g. BENCH_ARGS="conv3d conv2d".
AVX2_BUILD := .build-avx2
AVX2_ENV   := MORPHOSEG_TARGET_CPU=x86-64-v3
BENCH_ARGS ?=
build-avx2: deps
	$(AVX2_ENV) $(SWIFT) build -c release --product morphoseg --scratch-path $(AVX2_BUILD)
test-avx2: APT_PKGS += $(MPI_APT_PKGS) $(REPORT_APT_PKGS)
test-avx2: deps
	$(AVX2_ENV) $(MPI_ENV) $(SWIFT) build $(TEST_FLAGS) --product morphoseg --scratch-path $(AVX2_BUILD)
	$(AVX2_ENV) $(MPI_ENV) $(SWIFT) build $(TEST_FLAGS) --product dataparallel-probe --scratch-path $(AVX2_BUILD)
	$(AVX2_ENV) $(MPI_ENV) $(SWIFT) test $(TEST_FLAGS) --scratch-path $(AVX2_BUILD)
bench-avx2: build-avx2
	$(AVX2_BUILD)/release/morphoseg bench $(BENCH_ARGS)

## fuzz: each fuzz target (NIfTI reader, config loader, safetensors/checkpoint reader) under
## libFuzzer + AddressSanitizer for FUZZ_SECONDS each. Built into its own folder (.build/fuzz), so the
## ordinary build is untouched. New coverage goes to .build/fuzz/corpus/<target> (kept between runs,
## never committed); inputs that crash, leak, time out or run out of memory are written to
## Tests/Fuzz/regressions/<target>/, which the suite replays. FUZZ_ARGS passes libFuzzer flags
## (e.g. FUZZ_ARGS="-fork=1 -ignore_crashes=1" to keep going after a crash). Swift's backtracer is
## off so that AddressSanitizer reports the crash itself; lsan.supp names leaks outside MorphoSeg.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= nifti config safetensors
FUZZ_ARGS    ?=
FUZZ_BUILD   := .build/fuzz
FUZZ_ENV     := MORPHOSEG_MPI=0 MORPHOSEG_FUZZ=1
# swiftc keeps only its last -sanitize= flag, and SwiftPM passes `--sanitize` values one flag each in
# no fixed order: Swift code ends up with coverage or with ASan, not both. So SwiftPM is asked for
# `fuzzer` only (it then builds executables for libFuzzer's main and C targets with coverage), and
# the combined flag comes last for swiftc, ASan for clang. lld: with gold only the C targets'
# coverage counters reached libFuzzer.
FUZZ_FLAGS   := -c release --build-path $(FUZZ_BUILD) --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address \
                -Xcc -fsanitize=address -Xswiftc -use-ld=lld
fuzz: deps
	@for t in $(FUZZ_TARGETS); do $(FUZZ_ENV) $(SWIFT) build $(FUZZ_FLAGS) --product fuzz-$$t || exit 1; done
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t Tests/Fuzz/regressions/$$t; \
	  echo "== fuzz-$$t: $(FUZZ_SECONDS) s, log $(FUZZ_BUILD)/fuzz-$$t.log"; \
	  SWIFT_BACKTRACE=enable=no LSAN_OPTIONS=suppressions=Tests/Fuzz/lsan.supp $(FUZZ_BUILD)/release/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=Tests/Fuzz/regressions/$$t/ $(FUZZ_ARGS) \
	    $(FUZZ_BUILD)/corpus/$$t Tests/Fuzz/corpus/$$t > $(FUZZ_BUILD)/fuzz-$$t.log 2>&1 || failed="$$failed $$t"; \
	  grep -E "INITED|pulse|DONE|^Done|^#[0-9]+: cov:|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)|ERROR|SUMMARY|Test unit written|artifact_prefix" \
	    $(FUZZ_BUILD)/fuzz-$$t.log | grep -v "^INFO: seed"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: findings in$$failed (inputs in Tests/Fuzz/regressions/<target>/)"; exit 1; fi

clean:
	rm -rf .build $(AVX2_BUILD) runs
