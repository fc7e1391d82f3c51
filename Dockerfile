# syntax=docker/dockerfile:1
# The authcell image the Helm chart (helm/authcell) runs:
#   docker build -t REGISTRY/authcell:0.1.0 .
# Build stage: the official Rust image (Debian bookworm), so the binary links against the same
# glibc as the runtime image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the crate registry and compiled dependencies between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin authcell \
    && install -D -m 0755 target/release/authcell /out/authcell

# Runtime: distroless with glibc and libgcc, no shell, no package manager; user 65532
# ("nonroot"), which the chart's securityContext also sets.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/authcell /usr/local/bin/authcell
USER 65532:65532
# 8080: gRPC (every service, health included). 9090: Prometheus metrics (--metrics-listen).
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/authcell"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
