# syntax=docker/dockerfile:1
# Multi-stage build: a Rust builder produces the server and the panel, a slim
# Debian runtime runs them as an unprivileged user.

FROM rust:1-bookworm AS builder
RUN apt-get update && apt-get install -y --no-install-recommends \
        libclang-dev nettle-dev libgmp-dev pkg-config nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN rustup target add wasm32-unknown-unknown \
    && want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock) \
    && cargo install wasm-bindgen-cli --version "$want" \
    && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund \
    && scripts/build-site.sh release

FROM debian:bookworm-slim
# libnettle8, libhogweed6, libgmp10: the OpenPGP backend the server links.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
        libnettle8 libhogweed6 libgmp10 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/p2pnet --create-home p2pnet \
    && mkdir -p /var/lib/p2pnet/data /var/lib/p2pnet/keys \
    && chown -R p2pnet:p2pnet /var/lib/p2pnet
COPY --from=builder /src/target/release/p2pnet-server /usr/local/bin/p2pnet-server
# Scan jobs send and read ICMPv6 on raw sockets: the binary alone holds
# CAP_NET_RAW (a file capability), so the unprivileged user needs nothing
# else. The container must keep NET_RAW in its bounding set (Docker's
# default; after --cap-drop ALL, --cap-add NET_RAW).
RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin \
    && setcap cap_net_raw+ep /usr/local/bin/p2pnet-server \
    && apt-get purge -y libcap2-bin && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/*
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
