#!/usr/bin/env bash
# The lab host image: Debian bookworm with systemd as PID 1, built with mmdebstrap and
# `docker import` (no registry is reachable, so nothing is pulled). Tagged with a hash of
# this recipe, so it is rebuilt only when the recipe changes; also tagged :latest for molecule.
source "$(dirname "$0")/lib.sh"

IMAGE_REPO=goship-lab-host
PACKAGES=systemd,systemd-sysv,dbus,libpam-systemd,python3,python3-apt,openssh-server,sudo,curl,ca-certificates,postgresql-client,iproute2,procps,adduser,less,gnupg
recipe_hash=$(sha256sum "$0" | cut -c1-12)
tag=$IMAGE_REPO:$recipe_hash

if docker image inspect "$tag" >/dev/null 2>&1; then
  log "host image: $tag cached"
else
  log "host image: building $tag with mmdebstrap (bookworm)"
  # The customize hooks make it behave like an EC2 Debian AMI: an `admin` user with
  # passwordless sudo, sshd enabled, no gettys, and an empty machine-id so each host gets its own.
  mmdebstrap --quiet --variant=apt --include="$PACKAGES" \
    --customize-hook='chroot "$1" useradd --create-home --shell /bin/bash admin' \
    --customize-hook='mkdir -m 0700 "$1/home/admin/.ssh" && chroot "$1" chown admin:admin /home/admin/.ssh' \
    --customize-hook='echo "admin ALL=(ALL) NOPASSWD:ALL" >"$1/etc/sudoers.d/admin" && chmod 0440 "$1/etc/sudoers.d/admin"' \
    --customize-hook='chroot "$1" systemctl enable ssh.service' \
    --customize-hook='chroot "$1" systemctl mask getty@.service console-getty.service systemd-firstboot.service' \
    --customize-hook='printf "PasswordAuthentication no\nUseDNS no\n" >"$1/etc/ssh/sshd_config.d/lab.conf"' \
    --customize-hook='truncate -s0 "$1/etc/machine-id"; rm -f "$1/var/lib/dbus/machine-id"' \
    --customize-hook='rm -rf "$1/var/lib/apt/lists/"* "$1/var/cache/apt/"*.bin' \
    bookworm - 2>"$LAB_STATE/logs/mmdebstrap.log" \
    | docker import --change 'CMD ["/sbin/init"]' - "$tag" >/dev/null \
    || die "building the host image failed: see $LAB_STATE/logs/mmdebstrap.log"
fi
docker tag "$tag" "$IMAGE_REPO:latest"
echo "$tag"
