#!/usr/bin/env bash
# Builds a Debian package of orgsync with plain dpkg-deb (no cargo-deb): the binaries in /usr/bin,
# the system unit, sysusers.d and tmpfiles.d entries, a commented /etc/orgsync/config.toml
# (a conffile), and maintainer scripts that create the user orgsync and reload systemd. The
# package does not enable or start orgsyncd.
#
#   packaging/deb/build.sh                       # cargo build --release, then target/debian/*.deb
#   sudo apt-get install ./target/debian/orgsync_0.1.0-1_amd64.deb
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
packaging="$root/packaging"
me="deb/build.sh"

usage() {
  cat <<EOF
Usage: packaging/deb/build.sh [OPTIONS]

  --from DIR          package the orgsync and orgsyncd in DIR instead of building them
                      (default: cargo build --release --locked -p orgsync, then target/release)
  --out DIR           where the .deb goes (default target/debian)
  --version V         the package version (default: the workspace version, with revision -1)
  --compression C     dpkg-deb's compressor: xz (default), gzip, zstd or none
  --no-strip          keep the binaries' debug symbols
  -h, --help          this text

Prints the path of the package on its last line.
EOF
}

die() {
  printf '%s: error: %s\n' "$me" "$*" >&2
  exit 1
}
usage_error() {
  printf '%s: %s (see --help)\n' "$me" "$*" >&2
  exit 2
}

from=""
out="$root/target/debian"
version=""
compression=xz
strip=1
while [ $# -gt 0 ]; do
  case "$1" in
    --from | --out | --version | --compression)
      [ $# -ge 2 ] || usage_error "$1 needs a value"
      case "$1" in
        --from) from=$2 ;;
        --out) out=$2 ;;
        --version) version=$2 ;;
        --compression) compression=$2 ;;
      esac
      shift
      ;;
    --no-strip) strip=0 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) usage_error "unknown argument: $1" ;;
  esac
  shift
done
case "$compression" in xz | gzip | zstd | none) ;; *) usage_error "unknown compression $compression" ;; esac
command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb is missing (apt-get install dpkg)"

if [ -z "$from" ]; then
  command -v "${CARGO:-cargo}" >/dev/null 2>&1 || die "cargo is missing; install Rust from https://rustup.rs, or package built binaries with --from DIR"
  echo "$me: building the release binaries (cargo build --release --locked -p orgsync)" >&2
  (cd "$root" && "${CARGO:-cargo}" build --release --locked -p orgsync >&2)
  from="${CARGO_TARGET_DIR:-$root/target}/release"
  case "$from" in /*) ;; *) from="$root/$from" ;; esac
fi
for b in orgsync orgsyncd; do
  [ -x "$from/$b" ] || die "$from/$b is missing; build it (cargo build --release --locked -p orgsync) or name its directory with --from"
done

if [ -z "$version" ]; then
  upstream=$(awk '/^\[workspace\.package\]/ { f = 1; next } /^\[/ { f = 0 }
    f && /^version *=/ { gsub(/[" ]/, ""); sub(/^version=/, ""); print; exit }' "$root/Cargo.toml")
  [ -n "$upstream" ] || die "cannot read the version from $root/Cargo.toml; pass --version"
  version="$upstream-1"
fi
arch=$(dpkg --print-architecture)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# debian/orgsync is where dpkg-shlibdeps expects the package's files.
pkg="$work/debian/orgsync"
mkdir -p "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/usr/lib/systemd/system" "$pkg/usr/lib/sysusers.d" \
  "$pkg/usr/lib/tmpfiles.d" "$pkg/etc/orgsync" "$pkg/usr/share/doc/orgsync/examples"

for b in orgsync orgsyncd; do
  if [ "$strip" -eq 1 ]; then
    strip --strip-unneeded -o "$pkg/usr/bin/$b" "$from/$b"
  else
    cp "$from/$b" "$pkg/usr/bin/$b"
  fi
  chmod 0755 "$pkg/usr/bin/$b"
done

# The units run /usr/bin/orgsyncd.
sed -e 's|^ExecStart=[^ ]*orgsyncd$|ExecStart=/usr/bin/orgsyncd|' \
  "$packaging/systemd/system/orgsyncd.service" >"$pkg/usr/lib/systemd/system/orgsyncd.service"
sed -e "s|exec /usr/local/bin/orgsyncd'|exec /usr/bin/orgsyncd'|" \
  "$packaging/systemd/system/credentials.conf.example" >"$pkg/usr/share/doc/orgsync/examples/credentials.conf"
grep -qx 'ExecStart=/usr/bin/orgsyncd' "$pkg/usr/lib/systemd/system/orgsyncd.service" ||
  die "could not set ExecStart in the system unit"
cp "$packaging/systemd/system/orgsync.sysusers" "$pkg/usr/lib/sysusers.d/orgsync.conf"
cp "$packaging/systemd/system/orgsync.tmpfiles" "$pkg/usr/lib/tmpfiles.d/orgsync.conf"
cp "$packaging/config.toml" "$pkg/etc/orgsync/config.toml"
cp "$root/README.md" "$pkg/usr/share/doc/orgsync/README.md"
cat >"$pkg/usr/share/doc/orgsync/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: orgsync

Files: *
License: GPL-3.0-only
 On Debian systems, the full text of the GNU General Public License version 3 can be found in
 /usr/share/common-licenses/GPL-3.
EOF
chmod 0644 "$pkg/usr/lib/systemd/system/orgsyncd.service" "$pkg/usr/lib/sysusers.d/orgsync.conf" \
  "$pkg/usr/lib/tmpfiles.d/orgsync.conf" "$pkg/usr/share/doc/orgsync/README.md" \
  "$pkg/usr/share/doc/orgsync/copyright" "$pkg/usr/share/doc/orgsync/examples/credentials.conf"
chmod 0770 "$pkg/etc/orgsync"
chmod 0640 "$pkg/etc/orgsync/config.toml"

for script in postinst prerm postrm; do
  install -m 0755 "$packaging/deb/$script" "$pkg/DEBIAN/$script"
done
echo /etc/orgsync/config.toml >"$pkg/DEBIAN/conffiles"

depends="libc6, libgcc-s1"
if command -v dpkg-shlibdeps >/dev/null 2>&1; then
  printf 'Source: orgsync\n\nPackage: orgsync\nArchitecture: any\n' >"$work/debian/control"
  if found=$(cd "$work" && dpkg-shlibdeps -O -e"debian/orgsync/usr/bin/orgsync" \
    -e"debian/orgsync/usr/bin/orgsyncd" 2>/dev/null); then
    depends=${found#shlibs:Depends=}
  fi
fi
installed_size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<EOF
Package: orgsync
Version: $version
Architecture: $arch
Maintainer: orgsync maintainers <orgsync@localhost>
Installed-Size: $installed_size
Depends: $depends
Recommends: systemd
Section: admin
Priority: optional
Description: keeps a Bitwarden organization in step with an LDAP / Active Directory directory
 orgsync invites new people, removes leavers and disabled accounts, and keeps groups and their
 members in step, like Bitwarden's Directory Connector, with a real dry run and a removal guard.
 .
 This package has the orgsync command and the orgsyncd daemon with a hardened systemd unit
 (orgsyncd.service) that runs as the user orgsync, configured in /etc/orgsync/config.toml.
EOF

mkdir -p "$out"
deb="$(cd "$out" && pwd)/orgsync_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"$compression" --build "$pkg" "$deb" >&2
echo "$deb"
