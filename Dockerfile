# syntax=docker/dockerfile:1
# pgrollout image: a build stage (Rust; pg_query's bindgen needs libclang), a `binary`
# stage the release workflow exports as the Linux release binary, and a slim Debian
# runtime with pg_dump/pg_restore for `backup-marker: { dump: true }`.
#
#   docker build -t pgrollout .
#   docker run --rm -e DATABASE_URL pgrollout status
#
# As a GitHub Action the published image runs in action mode (`pgrollout action`, set by
# action.yml `args`): the action's INPUT_* variables become the command line.
#
# Base images are pinned by digest so a rebuild of a release tag gets the same bases;
# Dependabot (.github/dependabot.yml) proposes new digests.

FROM rust:1-bookworm@sha256:93ce27a88655056a51dbdd8f5f2d7ddc071c7b0070fb288a37b5a285fc83971e AS build
# Package versions are not pinned: the digest above fixes the Debian snapshot the
# build sees, and the build tools' exact patch level does not change the binary's
# behaviour.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin pgrollout \
 && install -m 0755 target/release/pgrollout /usr/local/bin/pgrollout

# `docker buildx build --target binary --output type=local,dest=dist .` writes
# dist/pgrollout: the release binary, linked against bookworm's glibc 2.36.
FROM scratch AS binary
COPY --from=build /usr/local/bin/pgrollout /pgrollout

FROM debian:bookworm-slim@sha256:60eac759739651111db372c07be67863818726f754804b8707c90979bda511df AS runtime
# pg_dump refuses to dump a server of a newer major version than its own, so the image
# carries the client of the newest PostgreSQL major, from the PostgreSQL project's own
# apt repository (PGDG): one image dumps every supported server version. The server
# package too (initdb/pg_ctl, no cluster created): the dry-run step rehearses on a
# throwaway shadow of the target's schema first, and `drift: { against: migrations }`
# and `--ephemeral` need a throwaway server as well. Debian's
# postgresql-common ships PGDG's signing key, so no key is fetched at build time.
# tests/shipping.rs keeps PG_MAJOR at or above the newest major the README supports.
ARG PG_MAJOR=18
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Unpinned versions on purpose: PGDG keeps only the newest minor release of each major,
# so a pinned version would stop building at the next PostgreSQL minor release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates postgresql-common \
 && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.gpg] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list \
 && echo "create_main_cluster = false" >> /etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" "postgresql-${PG_MAJOR}" \
 && rm -rf /var/lib/apt/lists/* \
 && pg_dump --version | grep -q " ${PG_MAJOR}\." \
 && test -x "/usr/lib/postgresql/${PG_MAJOR}/bin/initdb"
COPY --from=build /usr/local/bin/pgrollout /usr/local/bin/pgrollout
# No USER: the image runs as root. GitHub's documentation for Docker container actions
# says they must run as the default (root) user: the runner mounts the workspace and the
# $GITHUB_OUTPUT / $GITHUB_STEP_SUMMARY files owned by the runner's own uid, which is
# not the same on every runner, and a fixed non-root uid could not write them (no
# outputs, a silent exit 0). Outside Actions, `docker run --user "$(id -u)"` runs it as
# any user: nothing in the image needs a home directory or root.
ENTRYPOINT ["/usr/local/bin/pgrollout"]
CMD ["--help"]
