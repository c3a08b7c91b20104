#!/usr/bin/env bash
# Benchmarks orgsync's cloud directory reads (Entra ID, Google Workspace, Okta) against the fewest requests the read needs
# and against Directory Connector's request pattern, in one run against the same emulator, and
# prints a markdown table; see bench/README.md. Arguments go to orgsync-bench-cloud, e.g.
#   bench/cloud.sh --users 50000 --latency-ms 20 --runs 3
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p orgsync -p orgsync-tests --bins
exec target/release/orgsync-bench-cloud "$@"
