#!/usr/bin/env bash
# Tests the image that scripts/build-image.sh built (`make test-image`; docs/image.md):
#   1. its configuration: entrypoint, user, port; the OCI archive readable by skopeo and pushed to a
#      registry on loopback as docs/image.md says;
#   2. its contents, from the mounted image (`podman image mount`; running a container is not possible
#      on every build machine): the binaries are the host's release build, both start inside the image
#      (every shared library they load is there), and there is no shell or package manager;
#   3. the simulated-node lab (tests/e2e_node.rs) with the exporter run from the image's filesystem under
#      the DaemonSet's privileges: it must produce the same exact map as the host build.
# Needs root. Environment: IMAGE, IMAGE_ARCHIVE as for scripts/build-image.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
IMAGE=${IMAGE:-localhost/network-mapper:$version}
IMAGE_ARCHIVE=${IMAGE_ARCHIVE:-target/image/network-mapper-$version.oci.tar}
source scripts/checks.sh

config=$(podman image inspect --format '{{json .Config.Entrypoint}} {{.Config.User}} {{json .Config.ExposedPorts}}' "$IMAGE")
if [[ $config == '["/usr/local/bin/network-mapper"] 0:0 {"9953/tcp":{}}' ]]; then
    ok "image config: $config"
else
    fail "image config is '$config', expected the exporter as entrypoint, user 0:0, port 9953/tcp"
fi
if archived=$(skopeo inspect --format '{{.Architecture}} {{len .Layers}} layers' "oci-archive:$IMAGE_ARCHIVE" 2>&1); then
    ok "skopeo reads $IMAGE_ARCHIVE: $archived"
else
    fail "skopeo cannot read $IMAGE_ARCHIVE: $archived"
fi

# The push path of docs/image.md, against a real registry (Debian's docker-registry, the CNCF
# distribution server) on a loopback port: the pushed manifest is the archive's, byte for byte.
registry_push() {
    local dir port pid pushed archived
    dir=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: "127.0.0.1:%s"}\n' \
        "$dir/data" "$port" >"$dir/config.yml"
    docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    pid=$!
    local ref="127.0.0.1:$port/platform/network-mapper:$version"
    # Up to 60 s for the registry to answer its API root (a loaded machine starts it slowly), unless it exits.
    for _ in $(seq 600); do
        python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/v2/', timeout=1)" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if skopeo copy --quiet --dest-tls-verify=false "oci-archive:$IMAGE_ARCHIVE" "docker://$ref" 2>"$dir/err"; then
        pushed=$(skopeo inspect --tls-verify=false --raw "docker://$ref" | sha256sum | cut -d' ' -f1)
        archived=$(skopeo inspect --raw "oci-archive:$IMAGE_ARCHIVE" | sha256sum | cut -d' ' -f1)
        if [[ $pushed == "$archived" ]]; then
            ok "skopeo copy oci-archive:... docker://$ref: the registry serves manifest sha256:${pushed:0:12}"
        else
            fail "the registry serves manifest sha256:$pushed, the archive holds sha256:$archived"
        fi
    else
        fail "skopeo copy to a local registry: $(cat "$dir/err") $(tail -3 "$dir/log")"
    fi
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
registry_push

rootfs=$(podman image mount "$IMAGE")
trap 'podman image unmount "$IMAGE" >/dev/null' EXIT
for bin in network-mapper netmap-reduce; do
    strip --strip-debug -o "target/image/$bin.stripped" "target/release/$bin"
    if cmp -s "target/image/$bin.stripped" "$rootfs/usr/local/bin/$bin"; then
        ok "/usr/local/bin/$bin is target/release/$bin (strip --strip-debug)"
    else
        fail "/usr/local/bin/$bin differs from target/release/$bin (rebuild the image: make image)"
    fi
done
# The dynamic loader inside the image resolves every library, or the binary does not start.
for cmd in "network-mapper --help" "netmap-reduce --version"; do
    # shellcheck disable=SC2086  # $cmd is a program and its flag
    if out=$(chroot "$rootfs" /usr/local/bin/$cmd 2>&1); then
        ok "chroot <image> $cmd: $(head -1 <<<"$out")"
    else
        fail "chroot <image> $cmd: $out"
    fi
done
for path in /bin/sh /usr/bin/dpkg /usr/bin/apt; do
    [[ -e $rootfs$path ]] && fail "$path is in the image: the runtime image holds only what the binaries load"
done
ok "no shell or package manager in the image ($(du -sm "$rootfs" | cut -f1) MiB)"

echo "== the simulated node, exporter from the image"
# The lab is a live test (ignored by a plain `cargo test`): it must run, and pass, here.
NETMAP_E2E_EXPORTER_ROOTFS=$rootfs cargo test --locked --test e2e_node -- --include-ignored --nocapture 2>&1 \
    | tee target/image/e2e.log | grep -E '^(e2e:|test |thread|---- )'
if grep -q '^test result: ok. 1 passed; 0 failed; 0 ignored' target/image/e2e.log; then
    ok "the image's exporter mapped the simulated node exactly"
else
    fail "the simulated node with the image's exporter (full log: target/image/e2e.log)"
fi

verdict test-image
