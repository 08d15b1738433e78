# refreshd: a two-stage build. The runtime image holds one binary and runs as an unprivileged
# user; it checks its own health with `refreshd healthcheck`.
#
# Base images are pinned to a release (the toolchain the tests run with, and the Debian it
# targets); bump them on purpose, together, and pin by digest (`image@sha256:…`) where builds
# must be reproducible.
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src

# Dependencies first, in a layer of their own: it is rebuilt only when a manifest or Cargo.lock
# change, not on every edit of the source. Cargo wants every target the manifest names to exist,
# and every workspace member's manifest (the load tool's, which the image does not build), so
# empty stand-ins are built, then removed with everything cargo recorded about them.
COPY Cargo.toml Cargo.lock ./
COPY tools/bench/Cargo.toml ./tools/bench/
RUN mkdir -p src tests/api tools/bench/src \
 && echo 'fn main() {}' > src/main.rs \
 && echo 'fn main() {}' > tools/bench/src/main.rs \
 && touch src/lib.rs tests/api/main.rs \
 && cargo build --release --locked --bin refreshd \
 && rm -rf src tests target/release/refreshd* target/release/deps/refreshd-* \
      target/release/deps/librefreshd-* target/release/.fingerprint/refreshd-*

# Then the crate itself. Compiled into the binary: the demo page's template (askama) and its
# assets (include_str!). Cargo reads every target the manifest names, tests included, and every
# workspace member.
COPY src ./src
COPY templates ./templates
COPY static ./static
COPY tests ./tests
COPY tools/bench ./tools/bench
RUN cargo build --release --locked --bin refreshd

FROM debian:12.12-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin refreshd
COPY --from=build /src/target/release/refreshd /usr/local/bin/refreshd
USER 10001
ENV BIND_ADDR=0.0.0.0:8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["refreshd", "healthcheck"]
ENTRYPOINT ["refreshd"]
CMD ["serve"]
