# syntax=docker/dockerfile:1
#
# migrator as one static binary in a FROM-scratch image: /migrator, nothing else
# (no shell, no libc, no CA store: the Amazon RDS roots and the public web roots
# are compiled into the binary). Application images take it with COPY --from;
# docs/packaging.md#baking-it-into-the-application-image shows how, and
# docs/codebuild.md#ecs-task-definition the ECS task definition. Nothing is
# downloaded at build time but the Rust image and the crates of Cargo.lock.
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
# the builder.
#
# From a static binary built outside (`cargo build --release`; no registry, no
# Rust image): the target "prebuilt", with a folder holding only the binary,
# named `migrator`, as the build context (docs/packaging.md#the-image):
#
#   mkdir /tmp/ctx && cp target/x86_64-unknown-linux-gnu/release/migrator /tmp/ctx/
#   docker build --target prebuilt -f Dockerfile -t migrator:0.1.0 /tmp/ctx

# The Rust toolchain the project is built with (Cargo.toml: rust-version). For
# reproducible builds, pin the image by digest too: rust:1.95.0-bookworm@sha256:...
ARG RUST_IMAGE=rust:1.95.0-bookworm

# --- prebuilt: the image around a binary built outside -----------------------
# The same image as the last stage. It comes first so that a builder stops here
# with --target prebuilt and never looks at a stage that starts from a registry.
FROM scratch AS prebuilt
COPY migrator /migrator
USER 65534:65534
ENTRYPOINT ["/migrator"]
CMD ["--help"]

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

# --- the image: the binary, nothing else --------------------------------------
FROM scratch

COPY --from=builder /out/migrator /migrator

# No /etc/passwd is needed for a numeric user: run as nobody.
USER 65534:65534
ENTRYPOINT ["/migrator"]
CMD ["--help"]
