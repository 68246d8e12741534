# geckohost: see README.md. On a fresh Debian machine:
#   make serve   build, install Firefox ESR if missing, run the server
#   make test    install what the tests need if missing, go vet, then every
#                test with the race detector; skipped tests listed at the end
#   make deb     build geckohost_<version>_<arch>.deb (see packaging/deb/)

# go from PATH, else the standard install location.
GO       ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN      ?= bin/geckohost
ARGS     ?=
FUZZTIME ?= 10s
# make test's extra go test flags and packages: make test TESTFLAGS="-run TestX" PKGS=./host
TESTFLAGS ?=
PKGS     ?= ./...
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The version stamped into the binary: `geckohost version`, --version, /status
# and the start log line show it.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE     ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(DATE)

# What the tests run, as CHECK=PACKAGE: CHECK is a command (found on PATH,
# /usr/sbin or /sbin) or an absolute path, "a,b" for either; PACKAGE the
# Debian package that provides it. make test installs the missing ones.
TEST_NEEDS := firefox-esr,firefox=firefox-esr /usr/lib/chromium/chromium=chromium \
	ip=iproute2 nft=nftables gcc=gcc redis-server=redis-server \
	unshare=util-linux nsenter=util-linux systemd-analyze=systemd \
	dpkg-deb=dpkg lintian=lintian /etc/ssl/certs/ca-certificates.crt=ca-certificates \
	certutil=libnss3-tools /usr/lib/python3/dist-packages/aiortc=python3-aiortc

.PHONY: build serve deps test-deps test fuzz deb clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .

serve: build
	@if ! command -v firefox-esr >/dev/null 2>&1 && ! command -v firefox >/dev/null 2>&1; then \
		echo "== Firefox not found: installing firefox-esr with apt-get"; \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y firefox-esr; \
	fi
	./$(BIN) serve $(ARGS)

deps: test-deps
	$(GO) mod download

# Installs the TEST_NEEDS that are missing (apt-get, with sudo when not
# root); where it cannot (no apt-get, or neither root nor sudo), fails with
# one line naming them and the command that installs them.
test-deps:
	@missing=""; \
	for need in $(TEST_NEEDS); do \
		pkg=$${need##*=}; found=""; \
		for c in $$(echo "$${need%=*}" | tr , ' '); do \
			case $$c in \
			/*) [ -e "$$c" ] && found=1 ;; \
			*) { command -v "$$c" || [ -x "/usr/sbin/$$c" ] || [ -x "/sbin/$$c" ]; } >/dev/null 2>&1 && found=1 ;; \
			esac; \
		done; \
		[ -n "$$found" ] || case " $$missing " in *" $$pkg "*) ;; *) missing="$$missing $$pkg" ;; esac; \
	done; \
	[ -z "$$missing" ] && exit 0; \
	if ! command -v apt-get >/dev/null 2>&1 || { [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null 2>&1; }; then \
		echo "make test: missing:$$missing; install them with: $(if $(SUDO),sudo )apt-get install$$missing (or your system's packages)" >&2; exit 1; \
	fi; \
	echo "== make test: installing what the tests need:$$missing"; \
	$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing

# go vet, then every test with the race detector, through testreport
# (internal/cmd/testreport): go's ok/FAIL lines, failures in full, then
# the skipped tests with their reasons and "N passed, N failed, N skipped".
# With CI=true a test skipped for a missing component fails the run.
test: test-deps
	$(GO) vet $(PKGS)
	$(GO) build -o bin/testreport ./internal/cmd/testreport
	./bin/testreport -go $(GO) -race -timeout 20m $(TESTFLAGS) $(PKGS)

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

# The Debian package ./geckohost_<version>_<arch>.deb (packaging/deb/build
# makes the version Debian-valid), its binary built as a PIE, checked with
# lintian when lintian is installed (make test installs it).
deb:
	$(GO) build -buildmode=pie -ldflags "$(LDFLAGS)" -o bin/deb/geckohost .
	@deb=$$(packaging/deb/build bin/deb/geckohost "$(VERSION)" .) && \
	if command -v lintian >/dev/null 2>&1; then lintian --fail-on error "$$deb"; \
	else echo "lintian not installed: $$deb not checked (apt-get install lintian)"; fi && \
	echo "built $$deb"

clean:
	rm -rf bin geckohost_*.deb
