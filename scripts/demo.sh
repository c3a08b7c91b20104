#!/usr/bin/env bash
# Sets up orgsync on a fresh Debian 12 machine and runs the main job end to end against a sample
# LDAP directory and a local Bitwarden-compatible organization server (both on 127.0.0.1, both
# stopped when the script ends):
#
#   install packages -> build -> start the sample directory and organization server ->
#   configure orgsync -> login -> test (dry run with diff) -> sync -> change the directory ->
#   test -> sync -> show the organization.
#
# The demo installation lives in ./demo (config.toml, data/); nothing touches ~/.config.
# DEMO_KEEP=1 keeps the sample servers running at the end (until Ctrl-C), to explore further.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Installing system packages (scripts/setup.sh)"
scripts/setup.sh
if ! command -v cargo >/dev/null; then
  echo "demo: cargo is missing; install Rust from https://rustup.rs first" >&2
  exit 1
fi

step "Building orgsync and the two sample servers (the first build takes 3 to 5 minutes on 2 cores; later runs, seconds)"
# Only what the demo runs: not the tray, the benchmark or the tests.
cargo build --locked -p orgsync --bin orgsync \
  -p orgsync-tests --bin orgsync-sample-directory --bin orgsync-test-server
bin="$root/target/debug"

demo="$root/demo"
rm -rf "$demo"
mkdir -p "$demo"
export ORGSYNC_CONFIG="$demo/config.toml"
export ORGSYNC_DATA_DIR="$demo/data"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_for_file() {
  for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done
  echo "demo: $1 did not appear; see $demo/*.log" >&2
  exit 1
}

step "Starting a sample LDAP directory and a local organization server on 127.0.0.1"
"$bin/orgsync-sample-directory" --write-info "$demo/directory.json" >"$demo/directory.log" 2>&1 &
pids+=($!)
"$bin/orgsync-test-server" --write-credentials "$demo/organization.json" >"$demo/server.log" 2>&1 &
pids+=($!)
wait_for_file "$demo/directory.json"
wait_for_file "$demo/organization.json"
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

step "Configuring orgsync ($ORGSYNC_CONFIG)"
orgsync() { "$bin/orgsync" "$@"; }
orgsync config set secrets.backend file
orgsync config set ldap.host 127.0.0.1
orgsync config set ldap.port "$(field "$demo/directory.json" ldaps_port)"
orgsync config set ldap.encryption ldaps
# The sample directory's CA lives in its temp dir, gone when it stops: keep a copy beside the config.
cp "$(field "$demo/directory.json" ca_file)" "$demo/directory-ca.pem"
orgsync config set ldap.ca_file "$demo/directory-ca.pem"
orgsync config set ldap.bind_dn "$(field "$demo/directory.json" bind_dn)"
orgsync config set ldap.root_path "$(field "$demo/directory.json" root_path)"
orgsync config set ldap.disabled_filter '(pwdAccountLockedTime=*)'
orgsync config set ldap.user_path ou=people
orgsync config set ldap.group_path ou=groups
orgsync config set sync.remove_disabled true
orgsync config set server.url "$(field "$demo/organization.json" base_url)"
field "$demo/directory.json" bind_password | orgsync config set-secret ldap.bind_password --stdin

step "Logging in with the organization's API key"
ORGSYNC_CLIENT_SECRET="$(field "$demo/organization.json" client_secret)" \
  orgsync login "$(field "$demo/organization.json" client_id)"

step "orgsync test   (dry run: what a sync would change)"
orgsync test

step "orgsync sync"
orgsync sync

step "orgsync sync   (again: nothing changed, nothing sent)"
orgsync sync

step "Changing the directory: Edsger leaves, Hedy joins support"
ldif() { LDAPCONF=/dev/null ldapmodify -x -H "$(field "$demo/directory.json" url)" \
  -D "$(field "$demo/directory.json" bind_dn)" -w "$(field "$demo/directory.json" bind_password)" >/dev/null; }
ldif <<LDIF
dn: uid=edsger,ou=people,dc=example,dc=org
changetype: delete

dn: uid=hedy,ou=people,dc=example,dc=org
changetype: add
objectClass: inetOrgPerson
uid: hedy
cn: Hedy Lamarr
sn: Lamarr
mail: hedy@example.org

dn: cn=support,ou=groups,dc=example,dc=org
changetype: modify
add: member
member: uid=hedy,ou=people,dc=example,dc=org
LDIF

step "orgsync test"
orgsync test

step "orgsync sync"
orgsync sync

step "The organization now (as the server holds it)"
base_url=$(field "$demo/organization.json" base_url)
python3 - "$base_url" <<'PY'
import json, sys, urllib.request
state = json.load(urllib.request.urlopen(sys.argv[1] + "/_test/state"))
print("Members:")
for m in sorted(state["members"], key=lambda m: m["email"]):
    print(f"  {m['email']:<24} {m['status']:<9} {m['type']}")
print("Groups:")
for g in sorted(state["groups"], key=lambda g: g["name"]):
    print(f"  {g['name']:<12} {', '.join(sorted(g['member_emails']))}")
PY

step "orgsync status"
orgsync status

cat <<EOF

Done. The demo installation is in $demo. To look around in it:

  export ORGSYNC_CONFIG=$demo/config.toml ORGSYNC_DATA_DIR=$demo/data
  $bin/orgsync config show        # every setting, defaults included
  $bin/orgsync config keys        # what each setting does
  $bin/orgsync status

EOF
if [ "${DEMO_KEEP:-}" = 1 ]; then
  cat <<EOF
The sample directory ($(field "$demo/directory.json" url)) and organization server ($base_url)
keep running until you press Ctrl-C. Meanwhile, in another terminal with the exports above:

  $bin/orgsync test               # the directory against the organization
  $bin/orgsync sync
  cargo build --locked -p orgsync --bin orgsyncd && $bin/orgsyncd   # the daemon, polling
EOF
  wait
else
  echo "The sample servers stop now (DEMO_KEEP=1 scripts/demo.sh keeps them running to explore)."
fi
