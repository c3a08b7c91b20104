#!/usr/bin/env bash
# Runs every test of orgsync on a Debian 12 machine: installs the packages the tests need
# (scripts/setup.sh), builds the binaries the end-to-end tests run, and runs the whole suite.
# The tests start their own slapd, Samba AD DC and organization server on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo fmt --all -- --check
# Lints, with the workspace's table in Cargo.toml (no unwrap or panic outside tests).
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests run target/debug/orgsync etc.; build them with the same features as the
# tests so nothing is rebuilt twice. The tests refuse binaries older than their sources.
cargo build --workspace --bins --locked
# setup.sh installed every tool the packaging checks use: none may be skipped.
export ORGSYNC_REQUIRE_ALL_TESTS=1
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
