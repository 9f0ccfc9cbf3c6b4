# network-mapper and netmap-reduce on a base that holds only what they load: glibc, libpcap and
# libpcap's own libraries, and a CA bundle. Built by `make image` (scripts/build-image.sh, docs/image.md):
#   - the binaries are release builds made on the host (`cargo build --release --locked --bins`),
#     staged as bin/ in the build context;
#   - BASE_IMAGE defaults to the local base that scripts/build-image.sh makes from Debian 12 packages
#     with mmdebstrap, so nothing is pulled from an image registry. Another base works if it has
#     glibc >= 2.36 and libpcap0.8 (the binaries are linked on Debian 12).
# COPY only: this file has no RUN step, so the build never runs a container.
ARG BASE_IMAGE=localhost/network-mapper-base:bookworm
FROM ${BASE_IMAGE}
COPY bin/network-mapper bin/netmap-reduce /usr/local/bin/
ENV PATH=/usr/local/bin:/usr/bin:/bin
# uid 0 with every capability dropped but NET_RAW (deploy/base/daemonset.yaml, docs/image.md
# "Privileges"): Kubernetes gives added capabilities only to uid 0 (no ambient capabilities), and a
# non-root user's file capabilities are ignored under allowPrivilegeEscalation: false.
USER 0:0
EXPOSE 9953
ENTRYPOINT ["/usr/local/bin/network-mapper"]
