# Atmosphere Relay container: build on Debian 12, run on debian:12-slim as a
# non-root user. The WebSocket/HTTP port 8765 is the only one exposed; the
# gRPC admin plane stays on 127.0.0.1:50051 inside the container (use
# `docker compose exec relay relayctl stats`).
#
#   docker build -t atmosphere-relay .
#   docker run --rm -p 8765:8765 atmosphere-relay [relay flags...]
#
# tests/deploy/check_dockerfile.sh checks this file without a Docker engine.

# --- build stage --------------------------------------------------------------
FROM debian:12 AS build
WORKDIR /src
# Dependencies first, so editing the sources does not reinstall packages.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
ARG JOBS=2
RUN BUILD_TYPE=Release CMAKE_ARGS="-DRELAY_BUILD_TESTS=OFF" JOBS="${JOBS}" scripts/build.sh

# --- runtime stage ------------------------------------------------------------
FROM debian:12-slim
# Shared libraries the binaries link against (Debian 12 package names);
# libgrpc29, libre2-9, libssl3, libc-ares2 and zlib1g come in as their
# dependencies. websocketpp, Asio and RapidJSON are header-only.
ARG RUNTIME_PKGS="libgrpc++1.51 libprotobuf32 libabsl20220623 libsqlite3-0"
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${RUNTIME_PKGS} \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --shell /usr/sbin/nologin relay
COPY --from=build /src/build/bin/relay /src/build/bin/relayctl /usr/local/bin/
# Fail the image build, not the first start, if a shared library is missing.
RUN ! ldd /usr/local/bin/relay /usr/local/bin/relayctl | grep "not found"

EXPOSE 8765
ENV HOST=0.0.0.0 PORT=8765
# relayctl asks the admin plane on 127.0.0.1:50051 (RELAY_ADMIN_ADDR). With TLS_CERT_FILE set the
# admin plane speaks TLS too: also set RELAY_ADMIN_CA to the CA (or certificate) that signed it, and
# RELAY_ADMIN_ADDR to a name the certificate covers (e.g. localhost:50051).
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/relayctl", "--timeout", "3", "health"]
USER relay
ENTRYPOINT ["/usr/local/bin/relay"]
