# kiln: `make demo` builds kiln and an image from examples/; `make test` runs every test.
GO      ?= go
BIN     := bin/kiln
# Tests and the demo use their own store unless KILN_ROOT says otherwise.
export KILN_ROOT ?= $(CURDIR)/.kiln

.PHONY: all build demo test unit e2e vet docs bench clean

all: build

# kiln-init (PID 1 of a baked VM) goes beside kiln, where kiln bake looks for it first.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN) ./cmd/kiln
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o bin/kiln-init ./cmd/kiln-init

examples/static/hello: examples/static/hello.go
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ $<

demo: build examples/static/hello
	$(BIN) build examples/curl
	$(BIN) build examples/static
	$(BIN) images
	$(BIN) inspect curl:latest
	$(BIN) run --rm --network none curl:latest --version
	$(BIN) run --rm --network none hello
	$(BIN) save curl:latest -o curl.oci.tar
	@echo "saved curl.oci.tar: try 'skopeo inspect oci-archive:curl.oci.tar' or 'podman load -i curl.oci.tar'"

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l cmd internal test bench 2>/dev/null)" || { gofmt -l cmd internal test bench; exit 1; }

# Unit and end-to-end tests: go test builds bin/kiln itself for test/e2e.
test: vet
	$(GO) test -count=1 -timeout 20m ./...

docs:
	$(GO) test ./internal/cli -run TestCLIReference -update

bench: build
	bench/build.sh

clean:
	rm -rf bin .kiln examples/static/hello curl.oci.tar
