#!/usr/bin/env bash
# Debian packages the lab runs on this machine, installed in one apt-get call when any is
# missing (root on Debian). What each provides: dockerd, mmdebstrap, haproxy + socat
# (its admin socket), PostgreSQL server and client, ssh for Ansible; lintian and unzip for
# the package and bundle tests; wrk for the load through HAProxy during rollouts; chromium opens
# the HTML deploy report in its browser test.
source "$(dirname "$0")/lib.sh"

declare -A need=([dockerd]=docker.io [mmdebstrap]=mmdebstrap [haproxy]=haproxy [socat]=socat
                 [ssh]=openssh-client [psql]=postgresql-client [curl]=curl
                 [lintian]=lintian [unzip]=unzip [wrk]=wrk [chromium]=chromium)
missing=()
for cmd in "${!need[@]}"; do command -v "$cmd" >/dev/null || missing+=("${need[$cmd]}"); done
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
((${#missing[@]})) || exit 0

[[ $EUID -eq 0 ]] || die "missing ${missing[*]}: install them (needs root)"
log "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >"$LAB_STATE/logs/apt.log" 2>&1 || die "apt-get update failed: see $LAB_STATE/logs/apt.log"
# policy-rc.d: Debian's postinst scripts must not start haproxy/postgresql services here.
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$LAB_STATE/logs/apt.log" 2>&1 \
  || die "apt-get install ${missing[*]} failed: see $LAB_STATE/logs/apt.log"
