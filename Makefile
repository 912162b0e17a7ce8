# Switchboard: make run starts a node on embedded defaults, make test runs
# the whole suite. Go 1.26 is the only requirement; PostgreSQL tests skip
# with a message unless SWITCHBOARD_TEST_POSTGRES is set (CI sets it).

GO        ?= go
BIN       := bin/switchboard
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
PROTOC_GEN_GO_VERSION := v1.36.12

.PHONY: all build run test bench bench-sip sim proto lint clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/switchboard

# One node, badger under ./data, the demo account provisioned.
run: build
	./$(BIN) node --data ./data --demo

# The race-checked suite and, beside it, the tests that run several nodes
# in one process, which protoactor-go's remoting cannot do under -race (see
# cluster/cluster_test.go); the second's output follows the first's.
test:
	@out=$$(mktemp); \
	$(GO) test -count=1 -run 'TestCluster|TestNode_TwoInOneProcess' ./cluster/ ./node/ >$$out 2>&1 & pid=$$!; \
	$(GO) test -race -count=1 ./...; race=$$?; \
	wait $$pid; one=$$?; \
	echo "go test -count=1 -run 'TestCluster|TestNode_TwoInOneProcess' ./cluster/ ./node/"; cat $$out; rm -f $$out; \
	exit $$((race || one))

# Benchmarks report ratios against baselines run beside them: the memory
# store beside badger and PostgreSQL, a bare protoactor actor beside ours,
# protoactor's disthash lookup beside ours, GET /healthz beside a warm call
# context at 2,000 requests/s (vegeta), the node's event stream beside a
# proxy's, a read of the node's account snapshot beside asking the account
# actor, one parse of a datagram beside the two it used to get. The failover benchmark (kill -9 to the first successful call,
# 20 trials) needs SWITCHBOARD_TEST_POSTGRES.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./persistence/ ./actors/ ./placement/
	$(GO) test -run '^$$' -bench . -benchtime 20000x ./cluster/
	$(GO) test -run '^$$' -bench . -benchtime 20000x ./accountview/
	$(GO) test -run '^$$' -bench DatagramParse -benchtime 20000x ./sipedge/
	$(GO) test -run '^$$' -bench DebugActors -benchtime 500x ./httpapi/
	$(GO) test -run '^$$' -bench WarmGet -benchtime 10000x ./node/
	$(GO) test -run '^$$' -bench PatchToProxy -benchtime 2000x ./node/
	$(GO) test -run '^$$' -bench Failover ./cmd/switchboard/

# SIP proxying: one Switchboard node beside Kamailio 5.6
# (bench/sip/kamailio.cfg), the same SIPp client scenarios (INVITE and
# MESSAGE from a trunk and from digest-authenticated devices, REGISTER)
# stepped up in rate through both; prints the highest rate each passes with
# no failed call, p50/p99 response times at half of it, memory per active
# call with 10,000 calls up, and the ratios. Needs apt-get install
# sip-tester kamailio. More flags with BENCH_SIP_FLAGS, e.g.
# "--methods INVITE-auth --memory-calls 0", "--growth" (the growth table:
# 1k, 10k, 50k devices) or "--pprof out/pprof".
BENCH_SIP_FLAGS ?=
bench-sip: build
	$(GO) run ./bench/sip --switchboard ./$(BIN) $(BENCH_SIP_FLAGS)

# A seeded placement simulation: make sim [SCENARIO=steady] [SEED=1]
# replays exactly the run that printed that seed.
SCENARIO ?= steady
SEED     ?= 1
sim: build
	./$(BIN) sim --scenario simulations/scenarios/$(SCENARIO).json --seed $(SEED) --out out/sim/$(SCENARIO)-$(SEED)

# Regenerates the committed protobuf code (needs protoc; CI never does).
proto:
	GOBIN=$(CURDIR)/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	protoc --plugin=protoc-gen-go=$(CURDIR)/bin/protoc-gen-go --go_out=. --go_opt=paths=source_relative actors/actorpb/actors.proto actors/actorpb/messaging.proto actors/actorpb/callcontext.proto cluster/clusterpb/cluster.proto

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff

clean:
	rm -rf bin data
