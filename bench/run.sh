#!/usr/bin/env bash
# Benchmarks orgsync against the floor (ldapsearch reading the same entries) in one run and
# prints a markdown table; see bench/README.md. Arguments go to orgsync-bench, e.g.
#   bench/run.sh --sizes 1000,10000,50000,200000 --runs 3 --daemon
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p orgsync -p orgsync-tests --bins
exec target/release/orgsync-bench "$@"
