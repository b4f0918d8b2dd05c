# cutover — the two commands that matter:
#   make demo   install what is missing, start the local stack, copy a sample
#               Redis dataset to DynamoDB through Kafka, and check the result
#   make test   the whole test suite against the same real local services
#
# Everything else here is a building block of those two.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin/cutover
STACK     := deploy/local/stack
# Benchmarks and chaos runs need a DynamoDB Local no other run has slowed.
FRESH_DDB := CUTOVER_REQUIRE_FRESH=1 $(STACK) fresh dynamodb
LINT_VERSION := v2.15.0
GOBIN     ?= $(shell $(GO) env GOPATH)/bin

# The tools that check deploy/helm: Helm and kubeconform from the Go module
# proxy, and the Kubernetes JSON schemas kubeconform validates against from
# the PyPI package kubernetes-validate, which ships them (kubeconform would
# fetch them from GitHub). KUBERNETES_VERSION picks one of the versions that
# package ships; the chart is rendered for it. test/helm_test.go reads these
# four versions from here, and finds the tools where these rules put them.
HELM_VERSION               := v3.22.0
KUBECONFORM_VERSION        := v0.8.0
KUBERNETES_SCHEMAS_VERSION := 1.37.0
KUBERNETES_VERSION         := 1.37.0
CUTOVER_CACHE_DIR          ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/cutover
HELM                       := $(GOBIN)/helm-$(HELM_VERSION)
KUBECONFORM                := $(GOBIN)/kubeconform-$(KUBECONFORM_VERSION)
KUBERNETES_SCHEMAS         := $(CUTOVER_CACHE_DIR)/kubernetes-json-schema-$(KUBERNETES_SCHEMAS_VERSION)
export CUTOVER_CACHE_DIR

# The local stack's addresses (deploy/local/lib.sh has the same defaults).
CUTOVER_REDIS_PORT    ?= 16379
CUTOVER_KAFKA_PORT    ?= 19092
CUTOVER_DYNAMODB_PORT ?= 18000
export CUTOVER_REDIS_PORT CUTOVER_KAFKA_PORT CUTOVER_DYNAMODB_PORT

# DynamoDB Local accepts any credentials made of letters and digits; never
# look for real ones (and never call the EC2 metadata service) here.
LOCAL_AWS := AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 \
             AWS_EC2_METADATA_DISABLED=true AWS_PROFILE= AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: demo
demo: up build ## run the whole job end to end on the local stack
	@echo; echo "== 1/3 loading a sample dataset into Redis 127.0.0.1:$(CUTOVER_REDIS_PORT) (every type, TTLs, binary keys)"
	@$(GO) run ./test/cmd/cutover-dev seed-redis --redis-addr 127.0.0.1:$(CUTOVER_REDIS_PORT) --flush --keys 10000 --seed 42
	@echo; echo "== 2/3 cutover backfill: Redis → Kafka → DynamoDB Local"
	@echo "\$$ cutover backfill --config deploy/examples/demo.yaml"
	@$(LOCAL_AWS) $(BIN) backfill --config deploy/examples/demo.yaml
	@echo; echo "== 3/3 cutover reconcile: does every Redis key have a matching DynamoDB item?"
	@echo "\$$ cutover reconcile --config deploy/examples/demo.yaml"
	@$(LOCAL_AWS) $(BIN) reconcile --config deploy/examples/demo.yaml

.PHONY: test
test: up tools ## run every test (unit, fuzz seeds, end to end) against the local stack
	$(STACK) fresh dynamodb
	$(GO) vet ./...
	$(LOCAL_AWS) $(GO) test -count=1 -timeout 45m ./...
	$(MAKE) --no-print-directory lint

.PHONY: bench
bench: up build ## measure speed against direct copies in the same run, latency and memory (about 25 minutes; report: bench-report.md and .jsonl)
	rm -f bench-report.md bench-report.jsonl
	@printf '# cutover benchmarks\n\n' >bench-report.md
	@# DynamoDB Local slows down with use: a fresh one for each benchmark that needs it.
	$(FRESH_DDB)
	$(LOCAL_AWS) CUTOVER_BENCH_REPORT=$(CURDIR)/bench-report.md CUTOVER_BENCH_JSON=$(CURDIR)/bench-report.jsonl \
	  $(GO) test -run '^$$' -bench 'BenchmarkLatency' -benchtime 1x -timeout 20m ./test/
	$(FRESH_DDB)
	$(LOCAL_AWS) CUTOVER_BENCH_REPORT=$(CURDIR)/bench-report.md CUTOVER_BENCH_JSON=$(CURDIR)/bench-report.jsonl \
	  $(GO) test -run '^$$' -bench 'BenchmarkBackfillDynamoDB|BenchmarkBackfillRedis|BenchmarkReconcileRedis' \
	  -benchtime 1x -timeout 60m ./test/
	@printf '## 5. memory at 5,000,000 keys\n\n' >>bench-report.md
	$(LOCAL_AWS) CUTOVER_BENCH_KEYS=5000000 CUTOVER_BENCH_REPORT=$(CURDIR)/bench-report.md CUTOVER_BENCH_JSON=$(CURDIR)/bench-report.jsonl \
	  $(GO) test -run '^$$' -bench 'BenchmarkBackfillRedis' -benchtime 1x -timeout 60m ./test/
	@printf '## 7. microbenchmarks (ns and allocations per event)\n\n```\n' >>bench-report.md
	$(GO) test -run '^$$' -bench . -benchmem ./pipeline/ ./sinks/redis/ | grep -E '^Benchmark|^cpu' | tee -a bench-report.md
	@printf '```\n\n' >>bench-report.md
	$(MAKE) --no-print-directory bench-sink
	@echo "report: bench-report.md, bench-report.jsonl"

.PHONY: bench-sink
bench-sink: up build ## measure the DynamoDB sink at 5 ms per call: a latency proxy with a direct copy, and one worker against a stub (about 3 minutes; appends to bench-report.md and .jsonl)
	@printf '## 8. the DynamoDB sink at 5 ms per call\n\n' >>bench-report.md
	@# DynamoDB Local slows down with use: a fresh one. The stub benchmark does not use it.
	$(FRESH_DDB)
	$(LOCAL_AWS) CUTOVER_BENCH_REPORT=$(CURDIR)/bench-report.md CUTOVER_BENCH_JSON=$(CURDIR)/bench-report.jsonl \
	  $(GO) test -run '^$$' -bench 'BenchmarkSinkLatencyDynamoDB|BenchmarkSinkCeilingDynamoDB' -benchtime 1x -timeout 20m ./test/

.PHONY: chaos
chaos: up build ## prove the guarantees under faults: every chaos scenario at full size and the workflow checker long, about 40 minutes (report: chaos-report.md, log: chaos.log)
	$(FRESH_DDB)
	@printf '| scenario | faults | events | keys | lost | regressions | resurrected | differences | took | every guarantee kept |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n' >chaos-report.md
	@# The DynamoDB source alone first: DynamoDB Local slows down with use.
	CUTOVER_CHAOS=full CUTOVER_CHAOS_REPORT=$(CURDIR)/chaos-report.md $(LOCAL_AWS) \
	  $(GO) test -count=1 -timeout 10m -v -run 'TestTableSourceSurvivesSIGKILL' ./test/ | \
	  tee chaos.log | grep --line-buffered -E '^ +[a-z_]+_test.go:[0-9]+: |^--- |^(ok|FAIL)'
	$(FRESH_DDB)
	CUTOVER_CHAOS=full CUTOVER_CHAOS_REPORT=$(CURDIR)/chaos-report.md $(LOCAL_AWS) \
	  $(GO) test -count=1 -timeout 40m -v -run 'TestChaos' ./test/ | \
	  tee -a chaos.log | grep --line-buffered -E '^ +[a-z_]+_test.go:[0-9]+: |^--- |^(ok|FAIL)'
	@# The workflow checker, long: random sequences of commands, stops and faults.
	$(FRESH_DDB)
	CUTOVER_WORKFLOW_BUDGET=10m $(LOCAL_AWS) \
	  $(GO) test -count=1 -timeout 60m -v -run 'TestWorkflows' ./test/ | \
	  tee -a chaos.log | grep --line-buffered -E '^ +[a-z_]+_test.go:[0-9]+: |^--- |^(ok|FAIL)'
	@echo; cat chaos-report.md

.PHONY: mutate
mutate: up ## prove the chaos checker: with a sink's version check switched off, these scenarios must fail (about 5 minutes)
	test/chaos/mutate.sh redis 'TestChaosReplayFromZero$$|TestChaosHotKeys$$|TestChaosSinkSIGSTOP$$|TestWorkflows/redis'
	$(FRESH_DDB)
	test/chaos/mutate.sh dynamodb 'TestChaosAmbiguousSuccess$$'

.PHONY: docs
docs: ## regenerate docs/reference (CLI, configuration, metrics, exit codes) from the code; make test fails when it is out of date
	$(GO) run ./cmd/cutover dev gen-docs --dir docs/reference

.PHONY: build
build: ## build bin/cutover
	$(GO) build -o $(BIN) ./cmd/cutover

.PHONY: up down status
up: ## install (first time) and start Redis, Kafka and DynamoDB Local on 127.0.0.1
	$(STACK) up
down: ## stop what `make up` started
	$(STACK) down
status: ## show the local stack
	$(STACK) status

.PHONY: lint
lint: $(GOBIN)/golangci-lint-$(LINT_VERSION) ## run golangci-lint (installed from the Go module proxy on first use)
	$(GOBIN)/golangci-lint-$(LINT_VERSION) run ./...

$(GOBIN)/golangci-lint-$(LINT_VERSION):
	@echo "installing golangci-lint $(LINT_VERSION) (first time only)"
	GOBIN=$(GOBIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(LINT_VERSION)
	mv $(GOBIN)/golangci-lint $@

.PHONY: tools
tools: $(HELM) $(KUBECONFORM) $(KUBERNETES_SCHEMAS)/.complete ## install what the chart test needs: helm, kubeconform, the Kubernetes schemas (first time only)

$(HELM):
	@echo "installing helm $(HELM_VERSION) (first time only)"
	GOBIN=$(GOBIN) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(GOBIN)/helm $@

$(KUBECONFORM):
	@echo "installing kubeconform $(KUBECONFORM_VERSION) (first time only)"
	GOBIN=$(GOBIN) $(GO) install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)
	mv $(GOBIN)/kubeconform $@

# Only the strict schemas of one Kubernetes version are kept (about 900
# files, 6 MB). Their references point at https://kubernetes.io/api/ (the
# package resolves that itself); kubeconform reads files, so each schema's
# $$id is renamed out of the way and "/api/_definitions.json" becomes the
# file beside it. .complete marks an installation that finished.
$(KUBERNETES_SCHEMAS)/.complete:
	@echo "installing the Kubernetes $(KUBERNETES_VERSION) JSON schemas from kubernetes-validate $(KUBERNETES_SCHEMAS_VERSION) (first time only)"
	rm -rf $(KUBERNETES_SCHEMAS) $(KUBERNETES_SCHEMAS).download
	python3 -m pip download --quiet --no-deps --only-binary=:all: \
	  --dest $(KUBERNETES_SCHEMAS).download kubernetes-validate==$(KUBERNETES_SCHEMAS_VERSION)
	python3 -m zipfile -e $(KUBERNETES_SCHEMAS).download/kubernetes_validate-$(KUBERNETES_SCHEMAS_VERSION)-*.whl \
	  $(KUBERNETES_SCHEMAS).download/wheel
	mv $(KUBERNETES_SCHEMAS).download/wheel/kubernetes_validate/kubernetes-json-schema/v$(KUBERNETES_VERSION)-local-strict \
	  $(KUBERNETES_SCHEMAS)
	sed -i -e 's|"\$$id": "https://kubernetes.io/api/|"x-kubernetes-validate-id": "https://kubernetes.io/api/|' \
	  -e 's|"\$$ref": "/api/_definitions.json#|"$$ref": "_definitions.json#|g' $(KUBERNETES_SCHEMAS)/*.json
	rm -rf $(KUBERNETES_SCHEMAS).download
	touch $@

.PHONY: fuzz
fuzz: ## fuzz the event decoder for a minute
	$(GO) test ./pipeline/ -run '^$$' -fuzz FuzzDecode -fuzztime 60s

.PHONY: clean
clean: ## remove build output and the demo's checkpoints (not the stack's data)
	rm -rf bin .cutover
