# Thin wrapper over Meson: the README's commands.
#   make build   build build/plinth
#   make run     build and run Plinth on embedded defaults with a demo organisation
#   make test    the whole test suite (plain build, then ASan+UBSan build, then valgrind)
#   make bench   benchmarks (ratios against a reference measured in the same run)
#   make image   the container image without a Docker engine (OCI layout + tarball; docs/helm.md)

BUILD      ?= build
ASAN_BUILD ?= build-asan
DATA       ?= .plinth-demo
LISTEN     ?= 127.0.0.1:8080
# What building and running needs, and what the whole test suite needs on top.
BUILD_DEBS = gcc make pkg-config meson ninja-build libmicrohttpd-dev libjansson-dev libsqlite3-dev \
       libpq-dev libssl-dev libcurl4-openssl-dev libcmocka-dev libyaml-dev libgit2-dev git nodejs npm
TEST_DEBS = $(BUILD_DEBS) postgresql postgresql-contrib valgrind sqlite3 curl python3 python3-venv \
       chromium
# zsh: the cli suite runs `plinth completion zsh` in it.
TEST_DEBS += zsh
FUZZ_DEBS = $(BUILD_DEBS) clang libclang-rt-14-dev

.PHONY: test-deps web-deps all build run test test-plain test-asan test-valgrind bench fuzz deps clean image

all: build

deps:
	@./tools/deps.sh $(BUILD_DEBS)

test-deps:
	@./tools/deps.sh $(TEST_DEBS)

# web/node_modules (Chart.js) is an input of the build: npm ci first.
web-deps: deps
	@./tools/npm-ci.sh

$(BUILD)/build.ninja: | deps web-deps
	meson setup $(BUILD)

build: deps web-deps $(BUILD)/build.ninja
	meson compile -C $(BUILD)

run: build
	$(BUILD)/plinth serve --listen $(LISTEN) --data $(DATA) --demo

test: test-deps
	./tools/run-tests.sh

bench: build
	./bench/run.sh $(BUILD)

# deploy/docker/Dockerfile's image, built with crane (tools/image.sh): build-image/image/.
image: deps web-deps
	./tools/image.sh

fuzz: web-deps
	@./tools/deps.sh $(FUZZ_DEBS)
	./tests/fuzz/run-libfuzzer.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz build-valgrind build-image
