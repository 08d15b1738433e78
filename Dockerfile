# refreshd: a two-stage build. The runtime image holds one static-ish binary and runs as an
# unprivileged user; it checks its own health with `refreshd healthcheck`.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Compiled into the binary: the demo page's template (askama) and its assets (include_str!).
COPY templates ./templates
COPY static ./static
# Cargo reads every target the manifest names, tests included.
COPY tests ./tests
RUN cargo build --release --locked --bin refreshd

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin refreshd
COPY --from=build /src/target/release/refreshd /usr/local/bin/refreshd
USER 10001
ENV BIND_ADDR=0.0.0.0:8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["refreshd", "healthcheck"]
ENTRYPOINT ["refreshd"]
CMD ["serve"]
