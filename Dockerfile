# syntax=docker/dockerfile:1
# network-mapper and netmap-reduce in a small Debian runtime with libpcap.
#   docker build -t network-mapper:0.1.0 .
# scripts/check-dockerfile.py runs this file's build steps outside Docker (see its doc string).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---- build: the release binaries, linked against the distribution's libpcap ----
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the crate registry and target/ between builds (BuildKit, the default builder).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
 && mkdir -p /out \
 && cp target/release/network-mapper target/release/netmap-reduce /out/

# ---- runtime: the binaries plus the shared libraries they link ----
FROM debian:${DEBIAN_RELEASE}-slim
# libpcap0.8: the capture library (linked dynamically). ca-certificates: `netmap-reduce
# --prometheus https://...` verifies servers against the system roots (the exporter's API
# access uses the service account's CA and needs none).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
# Root inside the container, with every capability dropped but NET_RAW by the DaemonSet
# (deploy/base/daemonset.yaml): reading other pods' /proc entries needs uid 0.
USER 0:0
EXPOSE 9953
ENTRYPOINT ["/usr/local/bin/network-mapper"]
