# Guardrail: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Builds live outside the checkout so they survive clean clones (CI reuses them).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/guardrail-target
VENV := $(CURDIR)/.venv
PYTHON ?= python3
REQUIREMENTS := tests/emulator/requirements.txt
LINT_VENV := $(CURDIR)/.venv-lint
LINT_REQUIREMENTS := infra/lint-requirements.txt
TEMPLATES := infra/template.yaml infra/member-roles.yaml infra/management-role.yaml infra/forwarding.yaml
FUNCTIONS := account-baseline tag-enforcer agent-quarantine
# cargo-lambda (from the venv) for the end-to-end test.
export PATH := $(VENV)/bin:$(PATH)

.PHONY: help venv test demo lint lint-infra iam-judge iam-report scps rehearse build package deploy deploy-stack deploy-member undeploy undeploy-member check-policy clean-venv reliability bench bench-quick fuzz fuzz-quick fuzz-tools

help:
	@echo "make demo          build, start a local AWS emulator, replay events/ through the functions"
	@echo "make test          fmt, clippy, and every test (unit, emulator, end-to-end)"
	@echo "make check-policy  validate infra/policy.toml (or POLICY=path)"
	@echo "make lint-infra    cfn-lint and checkov on every template in infra/"
	@echo "make iam-judge     every IAM, SCP, trust and resource-policy claim of infra/ judged by an IAM policy evaluator"
	@echo "make iam-report    the same, writing the evaluated table into docs/SECURITY.md"
	@echo "make scps          the SCPs of infra/scp minified as submitted, with the commands that attach them"
	@echo "make rehearse      deploy the real templates with make deploy's own commands into a local AWS emulator"
	@echo "make package       one arm64 Lambda zip per function (cargo lambda build --release --arm64)"
	@echo "make deploy        package, upload and deploy infra/template.yaml (see README: Deploy)"
	@echo "make deploy-member the member StackSets, created or updated (management account)"
	@echo "make undeploy      delete the central stack; undeploy-member: the StackSets (see README: Teardown)"
	@echo "make reliability   the reliability tests, their figures written into docs/RELIABILITY.md"
	@echo "make bench         cold start, warm latency, calls and cost per event against Cloud Custodian; docs/BENCHMARKS.md"
	@echo "make fuzz          fuzz decode + gate + rules + alert for FUZZ_SECONDS (default 1800; cargo fuzz)"

$(VENV)/.installed: $(REQUIREMENTS)
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS)
	@touch $@

venv: $(VENV)/.installed

REHEARSAL_VENV := $(CURDIR)/.venv-rehearsal
REHEARSAL_REQUIREMENTS := tests/rehearsal/requirements.txt
$(REHEARSAL_VENV)/.installed: $(REHEARSAL_REQUIREMENTS)
	@test -x $(REHEARSAL_VENV)/bin/python || $(PYTHON) -m venv $(REHEARSAL_VENV)
	$(REHEARSAL_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(REHEARSAL_REQUIREMENTS)
	@touch $@

$(LINT_VENV)/.installed: $(LINT_REQUIREMENTS)
	@test -x $(LINT_VENV)/bin/python || $(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(LINT_REQUIREMENTS)
	@touch $@

# Zero errors from cfn-lint, zero failed checks from checkov (each skip is justified in the
# template, next to the resource).
lint-infra: $(LINT_VENV)/.installed
	$(LINT_VENV)/bin/cfn-lint $(TEMPLATES)
	$(LINT_VENV)/bin/checkov --directory infra --framework cloudformation --compact --quiet --skip-download

# The IAM judge (tests/iam): @cloud-copilot/iam-simulate, an IAM policy evaluator from npm (AGPL-3.0,
# a test tool only: never linked into or shipped with Guardrail), pinned by package-lock.json.
IAM_JUDGE := tests/iam
$(IAM_JUDGE)/node_modules/.installed: $(IAM_JUDGE)/package-lock.json
	npm ci --prefix $(IAM_JUDGE) --no-audit --no-fund --loglevel=error
	@touch $@

iam-judge: $(IAM_JUDGE)/node_modules/.installed
	node $(IAM_JUDGE)/judge.mjs

iam-report: $(IAM_JUDGE)/node_modules/.installed
	node $(IAM_JUDGE)/judge.mjs --write

# SCPs as `aws organizations create-policy` submits them: minified (whitespace counts through the
# API, and each must stay within 5,120 characters; make iam-judge checks these very bytes).
SCP_OUT ?= $(CARGO_TARGET_DIR)/scp
scps:
	@mkdir -p $(SCP_OUT)
	@for f in infra/scp/*.json; do \
		$(PYTHON) -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), separators=(",", ":")), end="")' $$f > $(SCP_OUT)/$$(basename $$f); \
		echo "$(SCP_OUT)/$$(basename $$f): $$(wc -c < $(SCP_OUT)/$$(basename $$f)) characters"; \
	done
	@echo "attach (management account): see README, Deploy step 5"

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

# The emulator logs who made each call; iam-coverage then checks every call Guardrail's roles
# made against their policies in infra/. The test run builds it (cargo builds a package's binaries
# for its tests); `cargo run -p` would resolve other features and rebuild the AWS SDK crates.
CALL_LOG := $(CARGO_TARGET_DIR)/guardrail-calls
test: venv lint lint-infra iam-judge
	rm -rf $(CALL_LOG)
	GUARDRAIL_CALL_LOG_DIR=$(CALL_LOG) cargo test --workspace --locked
	$(CARGO_TARGET_DIR)/debug/iam-coverage $(CALL_LOG)
	$(MAKE) --no-print-directory rehearse
	$(MAKE) --no-print-directory bench-quick
	$(MAKE) --no-print-directory fuzz-quick

# Benchmarks (release build), side by side with the Cloud Custodian peer from one run, written
# into docs/BENCHMARKS.md (with the sizes of `make package`'s zips) and docs/benchmarks.svg. bench-quick runs each briefly on the test
# build, to prove it runs; it still fails when a job makes more AWS calls than its budget.
PEER_DIR := ../shared/peer
BENCH_WARM ?= 20
BENCH_COLD ?= 20
bench: venv package
	cargo build --release --locked -p tag-enforcer -p agent-quarantine
	cargo bench --locked -p guardrail --bench decide
	bash $(PEER_DIR)/run_peer.sh $(BENCH_WARM) $(BENCH_COLD) 5
	cargo test --workspace --locked --no-run
	$(CARGO_TARGET_DIR)/debug/bench-functions --bin-dir $(CARGO_TARGET_DIR)/release --warm $(BENCH_WARM) \
		--cold $(BENCH_COLD) --peer $(PEER_DIR)/out/results --criterion $(CARGO_TARGET_DIR)/criterion \
		--markdown docs/BENCHMARKS.md --zips $(CARGO_TARGET_DIR)/lambda

# --workspace: the same features as `make test`'s build, so the AWS SDK is not built twice.
bench-quick:
	cargo test --locked --workspace --bench decide
	$(CARGO_TARGET_DIR)/debug/bench-functions --bin-dir $(CARGO_TARGET_DIR)/debug --warm 3 --cold 2

build:
	cargo build --workspace --locked

# Fuzzing (nightly, cargo-fuzz). The corpus grows in the target dir, seeded from events/ and the
# shared corpus; the dictionary is every quoted name the decoder looks for. A crash is saved in
# fuzz/artifacts/decide/ and fails the run; replay it with `cargo +nightly fuzz run decide FILE`.
FUZZ_SECONDS ?= 1800
FUZZ_CORPUS := $(CARGO_TARGET_DIR)/fuzz-corpus/decide
FUZZ_SEEDS := $(wildcard events/*/) $(wildcard ../shared/corpus/)
fuzz-tools:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version 0.13.2

fuzz: fuzz-tools
	mkdir -p $(FUZZ_CORPUS)
	grep -rhoE '"[A-Za-z][A-Za-z0-9_.:-]{2,40}"' shared/src/event | sort -u > $(FUZZ_CORPUS).dict
	cargo +nightly fuzz run decide $(FUZZ_CORPUS) $(FUZZ_SEEDS) -- \
		-dict=$(FUZZ_CORPUS).dict -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

# The CI-sized run: one minute.
fuzz-quick:
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=60

# Zips land in $(CARGO_TARGET_DIR)/lambda/<function>/bootstrap.zip, where template.yaml's
# CodeUri points (make deploy passes the path).
package: venv
	rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	cargo lambda build --release --arm64 --locked --output-format zip $(foreach f,$(FUNCTIONS),-p $(f))
	@for f in $(FUNCTIONS); do ls -l $(CARGO_TARGET_DIR)/lambda/$$f/bootstrap.zip; done

# make deploy ORG_ID=o-... MANAGEMENT_ACCOUNT=111122223333 BUCKET=guardrail-artifacts-<account>-<region> [STACK=guardrail]
# COUNT_TAGGED_AGENTS=true must go with quarantine.rate.tagged_agents = true in the policy (both
# deploys): the rule then forwards every role's and user's calls.
# Every parameter of infra/template.yaml has its variable: ALERT_EMAIL (subscribed to the alert
# topic), RESERVED_CONCURRENCY=on|off (on needs an account concurrency quota of 175: guardrail
# doctor), SWEEP_SCHEDULE (a Scheduler expression, or off), LOG_RETENTION_DAYS.
STACK ?= guardrail
COUNT_TAGGED_AGENTS ?= false
COUNT_READ_ONLY_CALLS ?= false
ALERT_EMAIL ?=
RESERVED_CONCURRENCY ?= on
SWEEP_SCHEDULE ?= cron(0 3 * * ? *)
LOG_RETENTION_DAYS ?= 365
deploy: package deploy-stack

# POLICY=path: a policy file put into every function's package as policy.toml (GUARDRAIL_POLICY,
# read from LAMBDA_TASK_ROOT) with a fixed timestamp, so an unchanged policy deploys nothing new;
# without it the functions run the infra/policy.toml they were built with.
export POLICY_INTO_ZIP := import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], "a"); i = zipfile.ZipInfo("policy.toml", (1980, 1, 1, 0, 0, 0)); i.external_attr = 0o644 << 16; z.writestr(i, open(sys.argv[2], "rb").read()); z.close()

# What `make deploy` runs after building the zips; `make rehearse` runs exactly this against the
# deployed-stack emulator, with x86_64 zips in LAMBDA_DIR. Running it again with nothing changed
# changes nothing.
LAMBDA_DIR ?= $(CARGO_TARGET_DIR)/lambda
DEPLOY_DIR ?= $(CARGO_TARGET_DIR)
deploy-stack:
	@test -n "$(ORG_ID)" -a -n "$(MANAGEMENT_ACCOUNT)" -a -n "$(BUCKET)" || { echo "set ORG_ID, MANAGEMENT_ACCOUNT and BUCKET (see README: Deploy)" >&2; exit 2; }
	@case "$(BUCKET)" in guardrail-artifacts-*) ;; *) echo "BUCKET must be named guardrail-artifacts-*: the security account's SCP (ArtifactsStay) keeps everyone but the deployer from swapping the zips there (see README: Deploy)" >&2; exit 2;; esac
	@command -v aws >/dev/null || { echo "the AWS CLI is needed: https://docs.aws.amazon.com/cli/" >&2; exit 2; }
	@mkdir -p $(DEPLOY_DIR)
	@if [ -n "$(POLICY)" ]; then for f in $(FUNCTIONS); do \
		mkdir -p $(DEPLOY_DIR)/lambda/$$f && cp $(LAMBDA_DIR)/$$f/bootstrap.zip $(DEPLOY_DIR)/lambda/$$f/bootstrap.zip && \
		python3 -c "$$POLICY_INTO_ZIP" $(DEPLOY_DIR)/lambda/$$f/bootstrap.zip $(POLICY) || exit 1; done; fi
	sed 's|\.\./target/lambda|$(if $(POLICY),$(DEPLOY_DIR)/lambda,$(LAMBDA_DIR))|' infra/template.yaml > $(DEPLOY_DIR)/template.yaml
	aws cloudformation package --template-file $(DEPLOY_DIR)/template.yaml --s3-bucket $(BUCKET) \
		--output-template-file $(DEPLOY_DIR)/template.packaged.yaml
	@status=$$(aws cloudformation describe-stacks --stack-name $(STACK) --query 'Stacks[0].StackStatus' --output text 2>/dev/null); \
	case "$$status" in ROLLBACK_COMPLETE|ROLLBACK_FAILED) echo "stack $(STACK) is $$status: its first create failed and rolled back, which deploy cannot update. Delete it (aws cloudformation delete-stack --stack-name $(STACK)), then, if the tables guardrail and guardrail-ledger were kept, see README: Deploy, \"A first create that failed\"" >&2; exit 2;; esac
	# --disable-rollback: a failed create or update stops where it failed and keeps what it made
	# (CloudFormation User Guide, "Choose how to handle failures when provisioning resources");
	# the next make deploy carries on from there. --s3-bucket: the template goes by S3, as one
	# over 51,200 bytes must (the packaged template is close to that).
	aws cloudformation deploy --template-file $(DEPLOY_DIR)/template.packaged.yaml --stack-name $(STACK) \
		--s3-bucket $(BUCKET) --s3-prefix templates \
		--capabilities CAPABILITY_NAMED_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset --disable-rollback \
		--parameter-overrides OrganizationId=$(ORG_ID) ManagementAccountId=$(MANAGEMENT_ACCOUNT) \
		CountTaggedAgents=$(COUNT_TAGGED_AGENTS) CountReadOnlyCalls=$(COUNT_READ_ONLY_CALLS) PolicyFile=$(if $(POLICY),policy.toml) AlertEmail=$(ALERT_EMAIL) \
		ReservedConcurrency=$(RESERVED_CONCURRENCY) "SweepSchedule=$(SWEEP_SCHEDULE)" LogRetentionDays=$(LOG_RETENTION_DAYS)

# make deploy-member ORG_ROOT_OR_OUS=r-abcd SECURITY_ACCOUNT=... BUS_ARN=... REGIONS="us-east-1 us-west-2"
# [INCIDENT_RESPONSE_ROLE=name: a role of the security account that may run `guardrail release`/`approve`]
# [SWEEP_OPERATOR_ROLE=name: a role of the security account that may run `guardrail sweep --rules tags`]
# Both must be named guardrail-* or break-glass-* (see README, Deploy step 4).
comma := ,
# [CALL_AS=DELEGATED_ADMIN from a StackSets delegated administrator] Creates or updates the member
# StackSets and adds instances where an OU or Region has none (guardrail deploy-member); run
# twice, the second run changes nothing. REGIONS must include us-east-1.
CALL_AS ?= SELF
space := $(empty) $(empty)
deploy-member:
	@test -n "$(ORG_ROOT_OR_OUS)" -a -n "$(SECURITY_ACCOUNT)" -a -n "$(BUS_ARN)" -a -n "$(REGIONS)" || { echo "set ORG_ROOT_OR_OUS, SECURITY_ACCOUNT, BUS_ARN and REGIONS (see README: Deploy)" >&2; exit 2; }
	cargo run --quiet --locked -p guardrail-cli -- deploy-member --ous $(subst $(space),$(comma),$(strip $(ORG_ROOT_OR_OUS))) \
		--security-account $(SECURITY_ACCOUNT) --bus-arn $(BUS_ARN) --regions $(subst $(space),$(comma),$(strip $(REGIONS))) \
		--incident-response-role "$(INCIDENT_RESPONSE_ROLE)" --sweep-operator-role "$(SWEEP_OPERATOR_ROLE)" \
		--call-as $(CALL_AS) $(if $(filter true,$(COUNT_TAGGED_AGENTS)),--count-tagged-agents) \
		$(if $(filter true,$(COUNT_READ_ONLY_CALLS)),--count-read-only-calls)

# Teardown (README, Teardown), after the pause, the releases and the SCPs' detachment:
# undeploy-member from the management account (CALL_AS, ORG_ROOT_OR_OUS and REGIONS as for
# deploy-member), undeploy from the security account. The tables, the ledger and their key stay.
undeploy-member:
	@test -n "$(ORG_ROOT_OR_OUS)" -a -n "$(REGIONS)" || { echo "set ORG_ROOT_OR_OUS and REGIONS as for deploy-member (see README: Teardown)" >&2; exit 2; }
	cargo run --quiet --locked -p guardrail-cli -- undeploy-member --ous $(subst $(space),$(comma),$(strip $(ORG_ROOT_OR_OUS))) \
		--regions $(subst $(space),$(comma),$(strip $(REGIONS))) --call-as $(CALL_AS)

undeploy:
	aws cloudformation delete-stack --stack-name $(STACK)
	aws cloudformation wait stack-delete-complete --stack-name $(STACK)
	@echo "stack $(STACK) deleted; kept (DeletionPolicy Retain): the tables guardrail and guardrail-ledger, the KMS key that encrypts them (described \"Guardrail data at rest\"; its alias is gone), and, never part of the stack, the artifact bucket and the /guardrail/ parameters"

demo: venv build
	$(CARGO_TARGET_DIR)/debug/guardrail demo

check-policy: build
	$(CARGO_TARGET_DIR)/debug/guardrail check-policy $(or $(POLICY),infra/policy.toml)

# The deployed stack, rehearsed (tests/rehearsal): the templates deployed into ministack with
# deploy-stack's own commands and the test build's x86_64 binaries, then checked and upgraded.
rehearse: $(REHEARSAL_VENV)/.installed
	@test -x $(CARGO_TARGET_DIR)/debug/tag-enforcer || cargo test --workspace --locked --no-run
	$(REHEARSAL_VENV)/bin/python tests/rehearsal/rehearse.py --bin-dir $(CARGO_TARGET_DIR)/debug

clean-venv:
	rm -rf $(REHEARSAL_VENV)
	rm -rf $(LINT_VENV)
	rm -rf $(VENV)

# The reliability tests with their figures, written into docs/RELIABILITY.md between the markers.
RELIABILITY_TESTS := --test at_most_once --test faults --test forged --test loops
reliability: venv
	{ cargo test --locked -p guardrail-tests $(RELIABILITY_TESTS) -- --nocapture --test-threads 1 && \
	  cargo test --locked -p account-baseline --test crash -- --nocapture; } 2>&1 \
		| tee $(CARGO_TARGET_DIR)/reliability.log | grep -E '(^test |figure: )'
	python3 tests/figures.py docs/RELIABILITY.md < $(CARGO_TARGET_DIR)/reliability.log
