#!/usr/bin/env bash
# Builds orgsync and installs `orgsync`, `orgsyncd` and a systemd unit that keeps orgsyncd running.
#
#   scripts/install.sh                  for you: ~/.local/bin and a systemd user unit
#   sudo scripts/install.sh --system    for a server: /usr/local/bin and a system unit that runs
#                                       as the user orgsync (config /etc/orgsync, state
#                                       /var/lib/orgsync)
#
# Run it again to upgrade: files that did not change are left alone, an existing config is kept.
# See --help for the options.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
packaging="$root/packaging"
me="install.sh"

usage() {
  cat <<EOF
Usage: scripts/install.sh [--user | --system] [OPTIONS]

Builds the release binaries (cargo build --release --locked -p orgsync) and installs them with a
systemd unit for orgsyncd.

  --user          (the default) install for the current user: orgsync and orgsyncd into
                  ~/.local/bin, the user unit into ~/.config/systemd/user/
  --system        install for the whole machine (as root): /usr/local/bin, the system unit into
                  /etc/systemd/system/, the user orgsync (sysusers.d), /etc/orgsync/config.toml
                  (root:orgsync 0640, only if missing) and /var/lib/orgsync
  --prefix DIR    install the binaries into DIR/bin (default ~/.local, or /usr/local with
                  --system); the unit runs DIR/bin/orgsyncd
  --destdir DIR   stage every file under DIR, as DESTDIR does for packaging (also read from the
                  DESTDIR environment variable): no user is created, no ownership is set and
                  systemctl is not run
  --with-tray     (--user only) also build and install orgsync-tray and its XDG autostart entry
                  (~/.config/autostart/); building it needs libgtk-3-dev, running it
                  libayatana-appindicator3-1
  --no-build      do not build; install the binaries in --from
  --from DIR      the directory holding already built orgsync and orgsyncd (implies
                  --no-build; default target/release)
  -h, --help      this text

The environment variable CARGO names the cargo to build with (default: cargo).
EOF
}

say() { printf '%s: %s\n' "$me" "$*"; }
die() {
  printf '%s: error: %s\n' "$me" "$*" >&2
  exit 1
}
usage_error() {
  printf '%s: %s (see --help)\n' "$me" "$*" >&2
  exit 2
}

mode=user
prefix=""
destdir="${DESTDIR:-}"
build=1
from=""
tray=0
while [ $# -gt 0 ]; do
  case "$1" in
    --user) mode=user ;;
    --system) mode=system ;;
    --prefix | --destdir | --from)
      [ $# -ge 2 ] || usage_error "$1 needs a directory"
      case "$1" in
        --prefix) prefix=$2 ;;
        --destdir) destdir=$2 ;;
        --from) from=$2 build=0 ;;
      esac
      shift
      ;;
    --prefix=*) prefix=${1#*=} ;;
    --destdir=*) destdir=${1#*=} ;;
    --from=*) from=${1#*=} build=0 ;;
    --no-build) build=0 ;;
    --with-tray) tray=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) usage_error "unknown argument: $1" ;;
  esac
  shift
done

# --- Where things go -------------------------------------------------------------------------

if [ -n "$destdir" ]; then
  mkdir -p "$destdir"
  destdir=$(cd "$destdir" && pwd)
fi

if [ "$mode" = user ]; then
  home=${HOME:?HOME is not set; --user installs into your home directory}
  default_prefix="$home/.local"
  unit_dir="${XDG_CONFIG_HOME:-$home/.config}/systemd/user"
else
  default_prefix=/usr/local
  unit_dir=/etc/systemd/system
  if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
    die "--system installs into /usr/local and /etc and creates the user orgsync: run it as root (sudo scripts/install.sh --system ...), or stage the files with --destdir DIR"
  fi
fi
[ "$tray" -eq 0 ] || [ "$mode" = user ] ||
  usage_error "--with-tray is for --user installs: the tray belongs to a desktop session"
prefix=${prefix:-$default_prefix}
case "$prefix" in
  /*) ;;
  *) usage_error "--prefix must be an absolute path, not $prefix" ;;
esac
prefix=${prefix%/}
bin_dir="$prefix/bin"

# The path the unit runs. The default user location stays relative to the home directory (%h).
if [ "$mode" = user ] && [ "$bin_dir" = "$home/.local/bin" ]; then
  exec_path='%h/.local/bin/orgsyncd'
else
  exec_path="$bin_dir/orgsyncd"
  # It goes into a unit file (where % and spaces mean something) and a sed replacement.
  [[ "$exec_path" =~ ^/[A-Za-z0-9._/+@-]+$ ]] ||
    usage_error "the install path $exec_path has characters a systemd unit would misread; choose a --prefix of letters, digits and ._+@-"
fi

# --- Building ------------------------------------------------------------------------------

if [ "$build" -eq 1 ]; then
  cargo=${CARGO:-cargo}
  if ! command -v "$cargo" >/dev/null 2>&1; then
    if [ "$mode" = system ]; then
      die "cargo is not on root's PATH; build as yourself first (cargo build --release --locked -p orgsync), then run: sudo scripts/install.sh --system --no-build"
    fi
    die "cargo is missing; install Rust from https://rustup.rs, or install already built binaries with --from DIR"
  fi
  packages=(-p orgsync)
  [ "$tray" -eq 0 ] || packages+=(-p orgsync-tray)
  say "building the release binaries (cargo build --release --locked ${packages[*]})"
  (cd "$root" && "$cargo" build --release --locked "${packages[@]}")
fi
if [ -z "$from" ]; then
  from="${CARGO_TARGET_DIR:-$root/target}/release"
  case "$from" in /*) ;; *) from="$root/$from" ;; esac
fi
[ -d "$from" ] || die "$from does not exist; build first (cargo build --release --locked -p orgsync) or name the directory with --from"
from=$(cd "$from" && pwd)
binaries=(orgsync orgsyncd)
[ "$tray" -eq 0 ] || binaries+=(orgsync-tray)
for b in "${binaries[@]}"; do
  if [ ! -f "$from/$b" ] || [ ! -x "$from/$b" ]; then
    die "$from/$b is missing; build it first (cargo build --release --locked -p orgsync) or name the directory holding it with --from"
  fi
done

# --- Installing ----------------------------------------------------------------------------

# put SRC DEST MODE: installs SRC as DEST (under the destdir) unless it is already there with the
# same content and mode. The new file is written next to DEST and renamed over it, so a running
# orgsyncd keeps its old binary until it restarts.
changed=0
put() {
  local src=$1 dest="$destdir$2" file_mode=$3
  if [ -f "$dest" ] && cmp -s "$src" "$dest" &&
    [ "$(stat -c %a "$dest")" = "${file_mode#0}" ]; then
    say "unchanged $dest"
    return
  fi
  mkdir -p "$(dirname "$dest")"
  local tmp
  tmp=$(mktemp "$dest.XXXXXX")
  cp "$src" "$tmp"
  chmod "$file_mode" "$tmp"
  mv -f "$tmp" "$dest"
  say "installed $dest"
  changed=1
}

# unit TEMPLATE DEST: installs a unit (or drop-in) with orgsyncd's path replaced by exec_path.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
unit() {
  local template=$1 dest=$2 out
  out="$scratch/$(basename "$dest")"
  sed -e "s|^ExecStart=[^ ]*orgsyncd\$|ExecStart=$exec_path|" \
    -e "s|exec /usr/local/bin/orgsyncd'|exec $exec_path'|" "$template" >"$out"
  grep -qF "$exec_path" "$out" || die "could not set the orgsyncd path in $template"
  put "$out" "$dest" 0644
}

put "$from/orgsync" "$bin_dir/orgsync" 0755
put "$from/orgsyncd" "$bin_dir/orgsyncd" 0755

if [ "$mode" = user ]; then
  unit "$packaging/systemd/user/orgsyncd.service" "$unit_dir/orgsyncd.service"
  if [ "$tray" -eq 1 ]; then
    put "$from/orgsync-tray" "$bin_dir/orgsync-tray" 0755
    # The autostart entry names the installed binary, so it works without ~/.local/bin on PATH.
    sed -e "s|^Exec=orgsync-tray\$|Exec=$bin_dir/orgsync-tray|" \
      -e "s|^TryExec=orgsync-tray\$|TryExec=$bin_dir/orgsync-tray|" \
      "$packaging/autostart/orgsync-tray.desktop" >"$scratch/orgsync-tray.desktop"
    put "$scratch/orgsync-tray.desktop" "${XDG_CONFIG_HOME:-$home/.config}/autostart/orgsync-tray.desktop" 0644
  fi

  if [ -n "$destdir" ]; then
    say "staged under $destdir; systemctl was not run"
    exit 0
  fi
  if systemctl --user show-environment >/dev/null 2>&1; then
    systemctl --user daemon-reload
    say "reloaded the systemd user manager"
    if [ "$changed" -eq 1 ] && systemctl --user is-active --quiet orgsyncd.service; then
      say "orgsyncd is running the old version; restart it: systemctl --user restart orgsyncd"
    fi
  else
    say "no systemd user manager answers here; in your login session run: systemctl --user daemon-reload"
  fi
  case ":$PATH:" in
    *":$bin_dir:"*) ;;
    *) say "note: $bin_dir is not on your PATH; add it to run orgsync by name" ;;
  esac
  cat <<EOF

Next:
  orgsync config set ...; orgsync login; orgsync test     # configure and check (see the README)
  systemctl --user enable --now orgsyncd                  # start orgsyncd now and at every login
  loginctl enable-linger "\$USER"                          # keep it running without a login
                                                          # session, and start it at boot
  journalctl --user -u orgsyncd -f                        # its log
Without a login session there is no unlocked desktop keyring: for a lingering orgsyncd run
'orgsync config set secrets.backend file' before 'orgsync login'.
EOF
  exit 0
fi

# --system
sysusers=/etc/sysusers.d/orgsync.conf
tmpfiles=/etc/tmpfiles.d/orgsync.conf
config=/etc/orgsync/config.toml
put "$packaging/systemd/system/orgsync.sysusers" "$sysusers" 0644
put "$packaging/systemd/system/orgsync.tmpfiles" "$tmpfiles" 0644

if [ -z "$destdir" ]; then
  if getent passwd orgsync >/dev/null; then
    say "the user orgsync exists"
  elif command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers "$sysusers"
    say "created the user orgsync (systemd-sysusers)"
  else
    nologin=/usr/sbin/nologin
    [ -x "$nologin" ] || nologin=/sbin/nologin
    useradd --system --user-group --home-dir /var/lib/orgsync --no-create-home \
      --shell "$nologin" --comment "orgsync daemon" orgsync
    say "created the user orgsync (useradd)"
  fi
fi

# dir PATH MODE OWNER: creates PATH (under the destdir) and sets its mode, and its owner unless
# staging (the owner is the target machine's business then).
dir() {
  local path="$destdir$1"
  mkdir -p "$path"
  chmod "$2" "$path"
  [ -n "$destdir" ] || chown "$3" "$path"
}
dir /etc/orgsync 0770 root:orgsync
dir /var/lib/orgsync 0700 orgsync:orgsync

if [ -e "$destdir$config" ]; then
  say "kept the existing $destdir$config"
else
  install -m 0640 "$packaging/config.toml" "$destdir$config"
  [ -n "$destdir" ] || chown root:orgsync "$destdir$config"
  say "installed $destdir$config (a template: set the directory and server in it)"
fi

unit "$packaging/systemd/system/orgsyncd.service" "$unit_dir/orgsyncd.service"
unit "$packaging/systemd/system/credentials.conf.example" \
  "$unit_dir/orgsyncd.service.d/credentials.conf.example"

if [ -n "$destdir" ]; then
  say "staged under $destdir. On the target machine: systemd-sysusers $sysusers;" \
    "systemd-tmpfiles --create $tmpfiles; chown root:orgsync $config; systemctl daemon-reload"
  exit 0
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  say "reloaded systemd"
  if [ "$changed" -eq 1 ] && systemctl is-active --quiet orgsyncd.service; then
    say "orgsyncd is running the old version; restart it: systemctl restart orgsyncd"
  fi
else
  say "systemd is not running here; the unit is in $unit_dir/orgsyncd.service"
fi
orgsync_cmd="sudo -u orgsync env ORGSYNC_CONFIG=$config ORGSYNC_DATA_DIR=/var/lib/orgsync $bin_dir/orgsync"
cat <<EOF

Next (run orgsync as the user orgsync, so the files it writes belong to the service):
  alias orgsync='$orgsync_cmd'
  orgsync config set ldap.host ...; orgsync config set-secret ldap.bind_password
  orgsync login; orgsync test                  # configure and check (see the README)
  systemctl enable --now orgsyncd              # start orgsyncd now and at boot
  journalctl -u orgsyncd -f                    # its log
To pass the secrets as systemd credentials instead of /var/lib/orgsync/secrets.json, see
$unit_dir/orgsyncd.service.d/credentials.conf.example.
EOF
