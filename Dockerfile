# syntax=docker/dockerfile:1
#
# migrator as one static binary in a FROM-scratch image: /migrator and the Amazon
# RDS CA bundle, nothing else (no shell, no libc, no CA store). Application images
# take both with COPY --from; docs/packaging.md#baking-it-into-the-application-image
# shows how, and docs/codebuild.md#ecs-task-definition the ECS task definition.
#
# Build from a checkout of this repository:
#
#   docker build -t migrator:0.1.0 .
#
# With an application's migrations embedded (the binary then needs no folder at run
# time): name the application's checkout as the build context "app", and the
# folder inside it as MIGRATIONS_DIR:
#
#   docker build --build-context app=../shop --build-arg MIGRATIONS_DIR=db/migrations \
#     -t shop-migrator:1.4.0 .
#
# Pointing "app" at the migrations folder itself (MIGRATIONS_DIR=.) sends less to
# the builder. The build fails until RDS_CA_BUNDLE_SHA256 below is pinned.

# The Rust toolchain the project is built with (Cargo.toml: rust-version). For
# reproducible builds, pin the image by digest too: rust:1.95.0-bookworm@sha256:...
ARG RUST_IMAGE=rust:1.95.0-bookworm

# --- app: the application's files, when it has migrations to embed -----------
# Empty by default; `--build-context app=DIR` replaces this stage with DIR.
FROM scratch AS app

# --- builder: the static binary ----------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /src

# Only what `cargo build` reads. .cargo/config.toml is what makes the build
# static (glibc with crt-static; libc.a comes with the image's libc6-dev).
COPY Cargo.toml Cargo.lock build.rs ./
COPY .cargo .cargo
COPY src src

# Folder to embed, relative to the "app" build context; empty: embed nothing.
ARG MIGRATIONS_DIR=

# The app context is mounted, not copied: nothing of it stays in a layer, and
# build.rs reads it (MIGRATOR_EMBED_DIR) during this one step. The target folder
# is a cache mount, so the binary is copied out to /out before the step ends.
RUN --mount=type=bind,from=app,target=/app \
    --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eu; \
    if [ -n "$MIGRATIONS_DIR" ]; then \
        if [ ! -d "/app/$MIGRATIONS_DIR" ]; then \
            echo "error: MIGRATIONS_DIR=$MIGRATIONS_DIR is not a folder of the 'app' build context;" \
                 "pass --build-context app=DIR (see the top of this Dockerfile)" >&2; \
            exit 1; \
        fi; \
        export MIGRATOR_EMBED_DIR="/app/$MIGRATIONS_DIR"; \
        echo "embedding the migrations of $MIGRATIONS_DIR"; \
    fi; \
    # Build for the builder's own architecture (config.toml names x86_64).
    triple="$(rustc -vV | sed -n 's/^host: //p')"; \
    CARGO_BUILD_TARGET="$triple" cargo build --release --locked; \
    mkdir -p /out; \
    cp "target/$triple/release/migrator" /out/migrator; \
    # A binary that asks for a program interpreter would not start in scratch.
    if readelf --program-headers /out/migrator | grep -q 'program interpreter'; then \
        echo "error: /out/migrator is dynamically linked" >&2; exit 1; \
    fi; \
    /out/migrator --version; \
    ls -l /out/migrator

# --- rds-ca: the Amazon RDS CA bundle, checked against a pinned checksum -----
FROM ${RUST_IMAGE} AS rds-ca

# The bundle of every RDS region's root and intermediate CAs.
ARG RDS_CA_BUNDLE_URL=https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
# PIN THIS: the SHA-256 of global-bundle.pem, verified out of band
# (docs/packaging.md#pinning-the-rds-ca-bundle). AWS adds CAs to the bundle from time to time; a
# changed bundle fails this build until the new checksum is checked and pinned.
ARG RDS_CA_BUNDLE_SHA256=

RUN set -eu; \
    curl --fail --silent --show-error --location --proto '=https' --tlsv1.2 \
        --output /rds-ca-bundle.pem "$RDS_CA_BUNDLE_URL"; \
    actual="$(sha256sum /rds-ca-bundle.pem | cut -d' ' -f1)"; \
    if [ -z "$RDS_CA_BUNDLE_SHA256" ]; then \
        echo "error: RDS_CA_BUNDLE_SHA256 is not pinned. The downloaded bundle has" \
             "SHA-256 $actual; verify it out of band, then set the ARG default in" \
             "the Dockerfile (or pass --build-arg RDS_CA_BUNDLE_SHA256=...)" >&2; \
        exit 1; \
    fi; \
    echo "$RDS_CA_BUNDLE_SHA256  /rds-ca-bundle.pem" | sha256sum --check --strict - || { \
        echo "error: $RDS_CA_BUNDLE_URL has SHA-256 $actual, not the pinned" \
             "$RDS_CA_BUNDLE_SHA256: the bundle changed or the download was" \
             "tampered with; verify it before pinning the new checksum" >&2; \
        exit 1; \
    }; \
    grep -c 'BEGIN CERTIFICATE' /rds-ca-bundle.pem

# --- the image: the binary and the bundle, nothing else ----------------------
FROM scratch

# tls::RDS_CA_BUNDLE in the source names this path; keep both in step.
COPY --from=rds-ca /rds-ca-bundle.pem /etc/migrator/rds-ca-bundle.pem
COPY --from=builder /out/migrator /migrator

# No /etc/passwd is needed for a numeric user: run as nobody.
USER 65534:65534
ENTRYPOINT ["/migrator"]
CMD ["--help"]
