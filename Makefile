# kaopu — see README.md. `make run` starts a server, `make test` runs every test.
GO      ?= go
BIN     := $(CURDIR)/bin/kaopu
export KAOPU_BIN := $(BIN)

.PHONY: run build test test-deps unit e2e lint bench fuzz clean

run:
	$(GO) run ./cmd/kaopu serve

build:
	$(GO) build -o $(BIN) ./cmd/kaopu

# Installs the real peers the end-to-end tests drive (sipp, baresip) when they
# are missing; idempotent, needs root (or sudo) only when something is missing.
test-deps:
	bash scripts/test-deps.sh

unit:
	$(GO) test -count=1 -race ./internal/... ./cmd/...

e2e: build
	$(GO) test -count=1 -p 1 -timeout 20m ./test/...

test: test-deps lint unit e2e

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	gofmt -l . | tee /dev/stderr | (! read -r _)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fuzz:
	bash scripts/fuzz.sh

bench: build
	bash bench/run.sh

clean:
	rm -rf bin
