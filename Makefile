# kaopu — see README.md. `make run` starts a server, `make test` runs every test.
GO      ?= go
BIN     := $(CURDIR)/bin/kaopu
export KAOPU_BIN := $(BIN)

.PHONY: run build build-full test test-deps unit e2e lint bench fuzz fuzz-short clean

run:
	$(GO) run ./cmd/kaopu serve

build:
	$(GO) build -o $(BIN) ./cmd/kaopu

# The phone with Opus and the sound card (needs cgo, libopus-dev, pkg-config).
build-full:
	$(GO) build -tags '$(TAGS)' -o $(BIN) ./cmd/kaopu

# Installs the real peers the end-to-end tests drive (sipp, baresip) when they
# are missing; idempotent, needs root (or sudo) only when something is missing.
test-deps:
	bash scripts/test-deps.sh

# The cgo parts behind build tags (see README "Phone"): opus (libopus) and
# soundcard (miniaudio); their tests run with the tags as well.
TAGS := opus,soundcard
TAGGED_PKGS := ./internal/media/... ./internal/ua/... ./internal/cli/...

unit:
	$(GO) test -count=1 -race ./internal/... ./cmd/...
	$(GO) test -count=1 -race -tags '$(TAGS)' $(TAGGED_PKGS)

e2e: build
	$(GO) test -count=1 -p 1 -timeout 20m ./test/...

test: test-deps lint unit fuzz-short e2e

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	gofmt -l . | tee /dev/stderr | (! read -r _)
	$(GO) vet ./...
	$(GO) vet -tags '$(TAGS)' ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags '$(TAGS)' ./...

fuzz:
	TAGS='$(TAGS)' TAGGED_PKGS='$(TAGGED_PKGS)' bash scripts/fuzz.sh

# Every fuzz target for a few seconds (part of `make test`): the seed
# corpora run as tests in `unit`; this mutates them a little further.
fuzz-short:
	FUZZTIME=$${FUZZTIME:-3s} FUZZMINIMIZETIME=0 TAGS='$(TAGS)' TAGGED_PKGS='$(TAGGED_PKGS)' bash scripts/fuzz.sh

bench: build
	bash bench/run.sh

clean:
	rm -rf bin
