# ksp — make test installs what the tests need (the pinned npm peers) and runs them.
GO       ?= go
NPM_DIR  := internal/peers/npm
FUZZTIME ?= 5s
PKGS     := ./...

.PHONY: test peers unit fuzz bench build vet cross

test: peers vet cross unit fuzz

build:
	$(GO) build -o bin/ksp ./cmd/ksp

vet:
	$(GO) vet $(PKGS)

# Everything builds for macOS and Windows too (platform code sits in
# build-tagged files: internal/procattr, internal/filelock).
cross:
	GOOS=darwin $(GO) build $(PKGS)
	GOOS=windows $(GO) build $(PKGS)

# npm ci only when node_modules is missing or older than the lock file.
peers: $(NPM_DIR)/node_modules/.package-lock.json
$(NPM_DIR)/node_modules/.package-lock.json: $(NPM_DIR)/package-lock.json $(NPM_DIR)/package.json
	cd $(NPM_DIR) && npm ci --no-audit --no-fund
	@touch $@

unit:
	$(GO) test -race -count=1 -timeout 12m $(PKGS)

# A short run of every fuzz target (FUZZTIME each). Targets are found by name.
# Go 1.26's fuzz coordinator can end a run with a bare "context deadline
# exceeded" as -fuzztime expires (go.dev/issue/75804, fixed in Go 1.27): a
# failure that wrote no failing input and printed no panic is run once more;
# any real finding, or the same failure twice, fails.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "fuzz $$pkg $$f"; \
	    for try in 1 2; do \
	      if $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg > /tmp/ksp-fuzz.log 2>&1; then break; fi; \
	      if [ $$try = 1 ] && grep -q 'context deadline exceeded' /tmp/ksp-fuzz.log && \
	         ! grep -q -e 'Failing input written' -e 'panic:' /tmp/ksp-fuzz.log; then \
	        echo "  $$f: the fuzz coordinator's deadline race (go.dev/issue/75804), no input found; running it again"; continue; \
	      fi; \
	      cat /tmp/ksp-fuzz.log; exit 1; \
	    done; \
	  done; \
	done

bench: peers
	$(GO) run ./cmd/ksp bench server
	$(GO) run ./cmd/ksp bench produce
	$(GO) run ./cmd/ksp bench consume --fanout
	$(GO) run ./cmd/ksp bench esm
	$(GO) run ./cmd/ksp bench replicate
	$(GO) run ./cmd/ksp bench memory
