# A stand-in for rust:1-bookworm, made where no registry is reachable:
# scripts/docker-check.sh builds it from a debootstrapped Debian image and
# this machine's own stable toolchain (with the wasm32 target), laid out as
# the official image lays it out.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates curl git gcc g++ libc6-dev make pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN rustc --version && cargo --version && rustup target list --installed
