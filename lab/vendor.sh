#!/usr/bin/env bash
# Third-party packages the lab needs that bookworm lacks: Consul 1.8.7 (+ pipexec) from
# Debian bullseye. Fetched with a private apt configuration whose sources are this machine's
# own Debian sources with the suite changed to bullseye; the system's apt setup is untouched.
# Cached per machine in $LAB_CACHE/debs.
source "$(dirname "$0")/lib.sh"

debs=$LAB_CACHE/debs
if compgen -G "$debs/consul_*.deb" >/dev/null && compgen -G "$debs/pipexec_*.deb" >/dev/null; then
  log "vendor: consul and pipexec .debs cached"
else
  apt_dir=$LAB_CACHE/apt-bullseye
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$debs"
  shopt -s nullglob
  sources=(/etc/apt/sources.list.d/*.sources)
  ((${#sources[@]})) || die "no /etc/apt/sources.list.d/*.sources on this machine to derive bullseye sources from"
  # bookworm -> bullseye in Suites (bookworm-updates, bookworm-security follow along).
  sed -E '/^Suites:/ s/bookworm/bullseye/g' "${sources[@]}" >"$apt_dir/bullseye.sources"
  apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/bullseye.sources" -o Dir::Etc::SourceParts=/dev/null
            -o "Dir::State=$apt_dir" -o "Dir::State::Lists=$apt_dir/lists"
            -o "Dir::Cache=$apt_dir/cache" -o "Dir::State::status=/dev/null" -o APT::Get::List-Cleanup=0)
  log "vendor: fetching consul and pipexec from bullseye"
  apt-get "${apt_opts[@]}" update -qq >"$LAB_STATE/logs/vendor.log" 2>&1 || die "apt-get update (bullseye) failed: see $LAB_STATE/logs/vendor.log"
  (cd "$debs" && apt-get "${apt_opts[@]}" download consul pipexec >>"$LAB_STATE/logs/vendor.log" 2>&1) \
    || die "apt-get download consul pipexec failed: see $LAB_STATE/logs/vendor.log"
fi

# The Consul server of the lab runs on this machine from the same package's binary.
root=$LAB_CACHE/consul-root
if [[ ! -x $root/usr/bin/consul ]]; then
  rm -rf "$root"; mkdir -p "$root"
  dpkg-deb -x "$(ls "$debs"/consul_*.deb | head -n1)" "$root"
fi
log "vendor: $("$root/usr/bin/consul" version | head -n1)"
