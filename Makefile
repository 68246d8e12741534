# geckohost: see README.md. Two set-up commands on a fresh Debian machine:
#   make serve   build, install Firefox ESR if missing, run the server
#   make test    go vet + every test with the race detector

# go from PATH, else the standard install location.
GO       ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN      ?= bin/geckohost
ARGS     ?=
FUZZTIME ?= 10s
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The version stamped into the binary: `geckohost version`, --version, /status
# and the start log line show it.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE     ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(DATE)

.PHONY: build serve deps test fuzz clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .

serve: build
	@if ! command -v firefox-esr >/dev/null 2>&1 && ! command -v firefox >/dev/null 2>&1; then \
		echo "== Firefox not found: installing firefox-esr with apt-get"; \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y firefox-esr; \
	fi
	./$(BIN) serve $(ARGS)

deps:
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y firefox-esr chromium iproute2 nftables gcc redis-server python3-aiortc
	$(GO) mod download

test:
	$(GO) vet ./...
	$(GO) test -race -timeout 20m ./...

# Runs every fuzz target (func FuzzXxx in a *_test.go file) for FUZZTIME each.
fuzz:
	@set -e; \
	grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | sort | while read -r f; do \
		pkg=./$$(dirname "$${f#./}"); \
		for name in $$(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$$f"); do \
			echo "== fuzz $$name in $$pkg for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
		done; \
	done

clean:
	rm -rf bin
