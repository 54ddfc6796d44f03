# Multi-stage build: a Rust builder produces the server and the panel, a slim
# Debian runtime runs them as an unprivileged user.
#
# The base images are build arguments: the defaults are the public images a
# VPS pulls; scripts/docker-check.sh passes images it made locally (no
# registry is reachable there).
ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS chef
RUN apt-get update && apt-get install -y --no-install-recommends \
        libclang-dev nettle-dev libgmp-dev pkg-config nodejs npm \
    && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-unknown-unknown \
    && cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The dependency graph alone (cargo-chef's recipe): it changes only when a
# manifest or Cargo.lock does, so the layers below it, which build every
# dependency, survive a change to the project's own code.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY Cargo.lock ./
RUN want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock) \
    && cargo install wasm-bindgen-cli --version "$want"
COPY package.json package-lock.json ./
RUN PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --recipe-path recipe.json --release -p server \
    && cargo chef cook --recipe-path recipe.json --profile wasm-release \
        --target wasm32-unknown-unknown -p frontend
COPY . .
RUN scripts/build-site.sh release

FROM ${RUNTIME_IMAGE}
# libnettle8, libhogweed6, libgmp10: the OpenPGP backend the server links;
# libcap2-bin: setcap, below, removed once used.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
        libnettle8 libhogweed6 libgmp10 libcap2-bin \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/p2pnet --create-home p2pnet \
    && mkdir -p /var/lib/p2pnet/data /var/lib/p2pnet/keys \
    && chown -R p2pnet:p2pnet /var/lib/p2pnet
COPY --from=builder /src/target/release/p2pnet-server /usr/local/bin/p2pnet-server
# Scan jobs send and read ICMPv6 on raw sockets: the binary alone holds
# CAP_NET_RAW, as a *permitted* file capability that it raises itself at
# start, so the unprivileged user needs nothing else. Not `+ep`: the kernel
# refuses to exec a binary whose effective file capabilities the container
# cannot grant, so without NET_RAW (--cap-drop ALL) it would not start; with
# `+p` it starts and refuses scans with a clear reason. Scans need NET_RAW in
# the bounding set (Docker's default; after --cap-drop ALL, --cap-add NET_RAW).
# (This layer holds the binary again, with its capability: no package
# lists or tools are added to it.)
RUN setcap cap_net_raw+p /usr/local/bin/p2pnet-server \
    && apt-get purge -y libcap2-bin
COPY --from=builder /src/target/site /usr/share/p2pnet/site
USER p2pnet
WORKDIR /var/lib/p2pnet
ENV P2PNET_SERVER__LISTEN='["0.0.0.0:3000"]' \
    P2PNET_SERVER__DATA_DIR=/var/lib/p2pnet/data \
    P2PNET_SERVER__KEYS_DIR=/var/lib/p2pnet/keys \
    P2PNET_SERVER__SITE_ROOT=/usr/share/p2pnet/site \
    NODEVICE_SELECT=1
VOLUME ["/var/lib/p2pnet/data", "/var/lib/p2pnet/keys"]
EXPOSE 3000 4000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS -H 'Host: localhost' http://127.0.0.1:3000/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/p2pnet-server"]
