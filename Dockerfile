# syntax=docker/dockerfile:1
# pgrollout image: a build stage (Rust; pg_query's bindgen needs libclang) and a slim
# Debian runtime with pg_dump (postgresql-client) for `backup-marker: { dump: true }`.
#
#   docker build -t pgrollout .
#   docker run --rm -e DATABASE_URL pgrollout status
#
# As a GitHub Action the entrypoint runs in action mode (`pgrollout action`, set by
# action.yml `args`): the action's INPUT_* variables become the command line.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin pgrollout \
 && install -m 0755 target/release/pgrollout /usr/local/bin/pgrollout

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates postgresql-client \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/pgrollout /usr/local/bin/pgrollout
# Non-root. The uid is 1001 on purpose: it is the `runner` user of GitHub-hosted
# runners, which owns the workspace and the $GITHUB_OUTPUT / $GITHUB_STEP_SUMMARY files
# the action appends to (GitHub starts container actions with the image's USER). On a
# self-hosted runner whose user has another uid, build with --build-arg UID=<uid>.
ARG UID=1001
RUN useradd --uid "${UID}" --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin pgrollout
USER pgrollout
ENTRYPOINT ["/usr/local/bin/pgrollout"]
CMD ["--help"]
