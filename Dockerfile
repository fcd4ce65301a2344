# Multi-stage build of the invitetomedia image: a release build, then a small runtime image
# that runs as a non-root user with the binary and its config/ (defaults and templates).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY openapi.yaml ./
RUN cargo build --release --locked

FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /app
COPY --from=build /src/target/release/invitetomedia /app/invitetomedia
COPY config /app/config
USER 65532:65532
EXPOSE 8080
ENV APP_ENV=production
ENTRYPOINT ["/app/invitetomedia"]
CMD ["serve"]
