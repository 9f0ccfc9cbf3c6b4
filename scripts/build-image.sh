#!/usr/bin/env bash
# Builds the container image without pulling anything from an image registry (docs/image.md):
#   1. the base: a root filesystem made from Debian's packages by mmdebstrap (libpcap0.8 and
#      ca-certificates with their shared libraries; no shell, no package manager), imported into
#      podman as $BASE_IMAGE. Built once; REBUILD_BASE=1 makes it again (e.g. for security updates).
#   2. the release binaries, built here with cargo (linked against this machine's Debian 12 glibc and
#      libpcap, the same versions as the base), without debug information.
#   3. `podman build` of the Dockerfile on top of the base (COPY only: nothing runs in a container).
#   4. `podman save --format oci-archive` to $IMAGE_ARCHIVE, for `podman load` or `skopeo copy`.
# Environment: IMAGE (default localhost/network-mapper:<Cargo version>), BASE_IMAGE (default
# localhost/network-mapper-base:bookworm; any other name is pulled by podman as usual),
# IMAGE_ARCHIVE (default target/image/network-mapper-<version>.oci.tar), REBUILD_BASE=1.
# Needs root (podman's storage), podman, mmdebstrap, cargo. Exit 0 on success, 1 on a failed step,
# 2 when a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
IMAGE=${IMAGE:-localhost/network-mapper:$version}
BASE_IMAGE=${BASE_IMAGE:-localhost/network-mapper-base:bookworm}
IMAGE_ARCHIVE=${IMAGE_ARCHIVE:-target/image/network-mapper-$version.oci.tar}
SUITE=bookworm

for tool in podman mmdebstrap cargo; do
    command -v "$tool" >/dev/null || { echo "build-image: $tool is missing (run scripts/setup.sh)" >&2; exit 2; }
done
step() { printf '\n== %s (%ds)\n' "$*" "$SECONDS"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The hooks run on this machine with the new root filesystem as $1, after the packages are unpacked
# (the extract variant runs no customize hooks):
# - the CA bundle that ca-certificates' postinst (update-ca-certificates, not run by the extract
#   variant) would write: every certificate the package ships, which is its default selection;
# - the mount points a container runtime (and the lab's chroot) mounts over, passwd/group for uid 0;
# - no manual pages.
base_hooks=(
    --extract-hook='cat "$1"/usr/share/ca-certificates/mozilla/*.crt > "$1"/etc/ssl/certs/ca-certificates.crt'
    --extract-hook='mkdir -p "$1"/proc "$1"/sys "$1"/dev "$1"/tmp && chmod 1777 "$1"/tmp'
    --extract-hook=': > "$1"/etc/resolv.conf && chmod 644 "$1"/etc/resolv.conf'
    --extract-hook='printf "root:x:0:0:root:/root:/usr/sbin/nologin\n" > "$1"/etc/passwd && printf "root:x:0:\n" > "$1"/etc/group'
    --extract-hook='rm -rf "$1"/usr/share/man'
)

if [[ $BASE_IMAGE == localhost/* ]] && { [[ ${REBUILD_BASE:-0} == 1 ]] || ! podman image exists "$BASE_IMAGE"; }; then
    step "base: mmdebstrap --variant=extract $SUITE -> $BASE_IMAGE"
    # extract: the listed packages and their dependencies, unpacked; no Essential set, so no shell,
    # coreutils, dpkg or apt end up in the image. Maintainer scripts do not run (the hooks above do
    # the one that matters). The rest comes from the same Debian release as this machine.
    mmdebstrap --quiet --variant=extract --include=libpcap0.8,ca-certificates \
        "${base_hooks[@]}" "$SUITE" "$tmp/base.tar"
    podman import --quiet --message "mmdebstrap --variant=extract $SUITE libpcap0.8 ca-certificates" \
        "$tmp/base.tar" "$BASE_IMAGE" >/dev/null
    rm -f "$tmp/base.tar"
else
    step "base: $BASE_IMAGE (exists or is a registry image; REBUILD_BASE=1 remakes a local one)"
fi

step "binaries: cargo build --release --locked --bins"
cargo build --release --locked --bins
context=target/image/context
rm -rf "$context"
mkdir -p "$context/bin"
# Without the DWARF line tables of the release profile (most of the files' size); symbols stay, so
# a panic's backtrace still names functions.
for bin in network-mapper netmap-reduce; do
    strip --strip-debug -o "$context/bin/$bin" "target/release/$bin"
done

step "image: podman build $IMAGE"
pull=()
[[ $BASE_IMAGE == localhost/* ]] && pull=(--pull=never)
podman build --quiet "${pull[@]}" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
    -t "$IMAGE" -f Dockerfile "$context" >/dev/null

step "archive: podman save --format oci-archive $IMAGE_ARCHIVE"
mkdir -p "$(dirname "$IMAGE_ARCHIVE")"
rm -f "$IMAGE_ARCHIVE"
podman save --quiet --format oci-archive -o "$IMAGE_ARCHIVE" "$IMAGE"

size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "build-image: $IMAGE ($((size / 1024 / 1024)) MiB), archive $IMAGE_ARCHIVE ($(du -m "$IMAGE_ARCHIVE" | cut -f1) MiB), ${SECONDS}s"
