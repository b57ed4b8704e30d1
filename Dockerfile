# Gatehouse in a container: built with the Rust toolchain, run from a small Debian image as an unprivileged user, healthy while /health answers.
FROM rust:1.94-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY bench ./bench
COPY docs ./docs
RUN cargo build --release --locked --bin gatehouse

FROM debian:bookworm-slim
# ca-certificates for SMTP over TLS and rediss://, curl for the health check, libssl3 for
# webauthn-rs (passkeys; the build image has libssl-dev); the versions are Debian's stable
# ones, updated with the base image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/gatehouse gatehouse
COPY --from=build /src/target/release/gatehouse /usr/local/bin/gatehouse
USER 10001:10001
WORKDIR /var/lib/gatehouse
ENV GATEHOUSE_BIND=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///var/lib/gatehouse/data/gatehouse.db \
    LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/var/lib/gatehouse/data"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/health"]
ENTRYPOINT ["gatehouse"]
CMD ["serve"]
