# make run         start the services, migrate, seed the demo, create the admin, serve
#                  with the demo shop (/demo) and simulated visitors in the background
# make test        the whole suite against real services and the local ClickHouse cluster
#                  (CI runs it after make lint)
# make test-short  unit tests only, no services
# make lint        gofmt, go mod tidy, go vet, staticcheck, templ drift, compose file check
#                  (docker compose config or scripts/composecheck); CI runs it before make test
# make bench       every benchmark, on one ClickHouse server and the local cluster;
#                  rewrites docs/benchmarks.md
# make chaos       the reliability suite at full size (docs/ops/chaos.md)
# make fuzz        every fuzz target for FUZZTIME each
# make build       bin/lift

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
TEMPL := github.com/a-h/templ/cmd/templ@v0.3.1100
FUZZTIME ?= 10s
BENCH_OUT ?= docs/benchmarks.md
# The tests that kill nodes of the local ClickHouse cluster run only with this set,
# in make test's serial step and in make chaos (internal/chaos/cluster.go).
CLUSTER_FAULTS := LIFT_TEST_CLUSTER_FAULTS=1
CLUSTER_FAULT_TESTS := ^TestCluster(ReplicaKilled|ShardDown)$$

# make run's settings; the same defaults as lift's own.
LIFT_HTTP_ADDR ?= 127.0.0.1:8080
LIFT_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/lift?sslmode=disable
LIFT_LOG_FORMAT ?= text
ADMIN_EMAIL ?= admin@lift.local
# Visitors per second the demo's background simulation sends (0: none).
DEMO_RATE ?= 5

.PHONY: build run test test-short lint bench chaos fuzz services cluster

build:
	$(GO) build -o bin/lift ./cmd/lift

services:
	scripts/services up

# ZooKeeper and four ClickHouse nodes (2 shards x 2 replicas) for the cluster tests
# (docs/deploy.md); scripts/services cluster down removes them.
cluster:
	scripts/services cluster up

run: services build
	@export LIFT_HTTP_ADDR='$(LIFT_HTTP_ADDR)' LIFT_POSTGRES_URL='$(LIFT_POSTGRES_URL)' LIFT_LOG_FORMAT='$(LIFT_LOG_FORMAT)'
	bin/lift migrate
	# The demo's keys live in bin/ (git-ignored); seed makes new ones when they no longer work.
	bin/lift demo seed --keys bin/demo-keys.env
	set -a; source bin/demo-keys.env; set +a
	login="$(ADMIN_EMAIL) (password as printed when it was created)"
	if [[ -z "$$(psql "$$LIFT_POSTGRES_URL" -Atqc "SELECT 1 FROM users WHERE lower(email) = lower('$(ADMIN_EMAIL)')")" ]]; then
		password="$${LIFT_ADMIN_PASSWORD:-$$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
		printf '%s\n' "$$password" | bin/lift users create --email '$(ADMIN_EMAIL)' --role admin
		login="$(ADMIN_EMAIL) / $$password"
	fi
	echo
	echo "lift: http://$$LIFT_HTTP_ADDR/login"
	echo "login: $$login"
	echo "demo shop: http://$$LIFT_HTTP_ADDR/demo"
	echo "simulated visitors: $(DEMO_RATE)/s in the background (log: bin/demo-simulation.log; DEMO_RATE=0 for none)"
	echo
	if [[ '$(DEMO_RATE)' != 0 ]]; then
		bin/lift simulate --key "$$LIFT_DEMO_CLIENT_KEY" --no-report --duration 0 --rate '$(DEMO_RATE)' \
			--think 300ms --wait-ready 2m >bin/demo-simulation.log 2>&1 &
		sim=$$!
		trap 'kill $$sim 2>/dev/null' EXIT INT TERM
	fi
	bin/lift serve

test: services cluster
	scripts/tools chromium promtool growthbook-js # browser tests, docs/ops alert rules, GrowthBook's JS SDK; installs only when missing
	# -parallel 4: tests that call t.Parallel (those with only their own databases and
	# vhosts) mostly wait on the services, so four at a time per package keep two cores
	# busy. Tests that assert how long something takes, the cmd/lift ones that load lift
	# and ClickHouse hard (the simulators, results pages) and internal/chaos (its private
	# servers and timed faults) do not call t.Parallel and run one at a time.
	$(GO) test -race -count=1 -parallel 4 -timeout 60m ./...
	# The fault tests of the ClickHouse cluster kill its nodes (and restart them), so
	# they run alone, after everything else that uses the cluster (docs/ops/chaos.md).
	$(CLUSTER_FAULTS) $(GO) test -race -count=1 -timeout 30m -run '$(CLUSTER_FAULT_TESTS)' ./internal/chaos

test-short:
	$(GO) test -short -count=1 ./...

lint:
	# gofmt must have nothing to change (the generated *_templ.go files included).
	unformatted=$$(gofmt -l .)
	if [[ -n "$$unformatted" ]]; then
		echo "$$unformatted"
		echo "lint: gofmt would change the files above: run gofmt -w on them" >&2
		exit 1
	fi
	# Every module's go.mod and go.sum must be what go mod tidy makes of them; -diff
	# prints the change.
	for mod in $$(find . -name go.mod -not -path './.git/*'); do
		if ! (cd "$$(dirname "$$mod")" && $(GO) mod tidy -diff); then
			echo "lint: $$mod or its go.sum is not tidy: run go mod tidy there and commit the result" >&2
			exit 1
		fi
	done
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	# templ generate must leave the committed *_templ.go files as they are.
	if [[ -n "$$(find . -name '*.templ' -not -path './.git/*' -print -quit)" ]]; then
		templ_sums() { find . -name '*_templ.go' -not -path './.git/*' | sort | xargs -r sha256sum; }
		before=$$(templ_sums)
		$(GO) run $(TEMPL) generate
		if [[ "$$(templ_sums)" != "$$before" ]]; then
			git status --short -- '*_templ.go'
			echo "lint: templ generate changed generated files: run it and commit the result" >&2
			exit 1
		fi
		git diff --exit-code --stat -- '*_templ.go'
	fi
	# Without the compose plugin, the compose-spec loader validates the file instead.
	for f in docker-compose.yml docs/deploy/compose.cluster.yml; do
		if docker compose version >/dev/null 2>&1; then
			docker compose -f "$$f" config -q
		else
			(cd scripts/composecheck && $(GO) run . "../../$$f")
		fi
	done

bench: services cluster
	scripts/tools wrk
	scripts/benchmarks '$(BENCH_OUT)'

# The reliability suite at the issue's sizes (make test runs it reduced, as part of
# ./..., and the cluster's fault tests in its serial step): private RabbitMQ,
# ClickHouse and Postgres instances, so the shared ones are never stopped, except the
# local cluster's nodes, which the cluster scenarios kill and restart. Prints one
# CHAOS line of figures per scenario at the end.
chaos: services cluster
	LIFT_CHAOS=full $(CLUSTER_FAULTS) $(GO) test -v -count=1 -timeout 90m ./internal/chaos 2>&1 | tee chaos.log
	echo
	grep -h '^ *[a-z_]*\.go:[0-9]*: CHAOS ' chaos.log | sed 's/^ *[a-z_]*\.go:[0-9]*: //'

# go test -fuzz takes one target in one package at a time.
fuzz:
	grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r -n1 dirname | sort -u | while read -r dir; do
		for target in $$(grep -h '^func Fuzz' "$$dir"/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do
			echo "fuzz: $$dir $$target"
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime '$(FUZZTIME)' "$$dir"
		done
	done

.ONESHELL:
