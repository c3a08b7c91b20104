#!/usr/bin/env bash
# Installs what orgsync's build, demo and tests need on a fresh Debian 12 machine.
# Idempotent: packages already present are skipped. Needs root (or sudo).
#
#   slapd ldap-utils          private OpenLDAP servers started by the tests and the demo
#   samba samba-ad-dc ...     a private Active Directory domain controller for the AD tests
#   openssl                   test certificate authorities
#   systemd                   systemd-analyze, -sysusers and -tmpfiles for the packaging checks
#   dbus dbus-bin gnome-keyring  a private Secret Service keyring for the keyring tests
#   libsecret-tools           secret-tool, to write Directory Connector's keyring entries as
#                             its libsecret does (the import-bwdc keyring test)
#   libgtk-3-dev              building orgsync-tray (tao / tray-icon link GTK 3)
#   libayatana-appindicator3-1  the tray icon at run time (loaded with dlopen)
#   xvfb xauth x11-utils trayer xdotool imagemagick dunst
#                             the tray's smoke test: a virtual X display, a tray host, finding and
#                             clicking the icon, a screenshot, a notification daemon
set -euo pipefail

packages=(slapd ldap-utils openssl ca-certificates samba samba-ad-dc samba-ad-provision ldb-tools
  systemd
  dbus dbus-bin gnome-keyring libsecret-tools
  libgtk-3-dev libayatana-appindicator3-1 xvfb xauth x11-utils trayer xdotool imagemagick dunst)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

# Never let package scripts start system-wide slapd/samba services: orgsync's tests and demo run
# their own private servers on loopback. policy-rc.d exit 101 = "do not start services".
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod 755 /usr/sbin/policy-rc.d
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
# Do not let slapd's postinst build a default database in /etc/ldap.
echo "slapd slapd/no_configuration boolean true" | $sudo debconf-set-selections

echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
