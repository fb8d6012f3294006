#!/usr/bin/env bash
# The action's three flows — a push to staging, a version tag, a confirmed
# workflow_dispatch (and a dispatch with a wrong phrase) — run the way the runner starts
# a Docker container action: GITHUB_* and INPUT_* variables, an event payload file, and
# the GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files, each on a fresh database. Checks the
# step outputs, the exit code and that the job summary is not empty.
#
#   flows.sh --image IMAGE ADMIN_URL     the published image, through `docker run`
#   flows.sh --binary PATH ADMIN_URL     a local build, e.g. target/release/pgrollout
#
# ADMIN_URL is a superuser URL of a PostgreSQL server reachable from the host (the
# container uses the host network); each flow creates its own database there.
set -euo pipefail
cd "$(dirname "$0")/../.."

mode=$1
what=$2
admin_url=$3
config=.github/action-test/pgrollout.yml
migrations=$(find migrations -maxdepth 1 -name '*.sql' | wc -l)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
    echo "FAIL [$flow]: $*" >&2
    failures=$((failures + 1))
}

# The value of output NAME in a GITHUB_OUTPUT file (`name=value` or `name<<delimiter`).
output() {
    awk -v name="$1" '
        inblock { if ($0 == delim) { print val; exit } val = (n++ ? val "\n" : "") $0; next }
        index($0, name "<<") == 1 { delim = substr($0, length(name) + 3); inblock = 1; next }
        index($0, name "=") == 1 { print substr($0, length(name) + 2); exit }' "$2"
}

# run FLOW EVENT_NAME REF PAYLOAD: runs the action; sets $code and $files (host path).
run() {
    flow=$1
    local db="flow_${flow//-/_}"
    files="$work/$flow"
    mkdir -p "$files/temp"
    printf '%s\n' "$4" > "$files/event.json"
    : > "$files/output"
    : > "$files/summary"
    PGOPTIONS=--client-min-messages=warning psql -q -v ON_ERROR_STOP=1 "$admin_url" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    local url="${admin_url%/*}/$db"
    url="${url%%\?*}${admin_url#"${admin_url%%\?*}"}"
    # Paths as pgrollout sees them: in the container the files are mounted at /github/files.
    local seen=$files workspace=$PWD
    [ "$mode" = --image ] && seen=/github/files workspace=/github/workspace
    cat > "$files/env" <<VARS
GITHUB_ACTIONS=true
GITHUB_EVENT_NAME=$2
GITHUB_REF=$3
GITHUB_EVENT_PATH=$seen/event.json
GITHUB_OUTPUT=$seen/output
GITHUB_STEP_SUMMARY=$seen/summary
RUNNER_TEMP=$seen/temp
GITHUB_WORKSPACE=$workspace
INPUT_CONFIG=$config
INPUT_ENVIRONMENT=
INPUT_CONFIRM=
INPUT_DRY-RUN=
INPUT_DATABASE-URL=
INPUT_WORKING-DIRECTORY=.
INPUT_ARGS=
STAGING_DATABASE_URL=$url
PROD_DATABASE_URL=$url
VARS
    code=0
    if [ "$mode" = --image ]; then
        docker run --rm --network host --env-file "$files/env" \
            -v "$PWD:/github/workspace" -v "$files:/github/files" -w /github/workspace \
            "$what" action > "$files/log" 2>&1 || code=$?
    else
        local vars=()
        mapfile -t vars < "$files/env"
        env -i PATH="$PATH" HOME="$files" "${vars[@]}" "$what" action > "$files/log" 2>&1 || code=$?
    fi
    echo "== $flow: exit $code, status=$(output status "$files/output")"
}

# expect NAME VALUE: the flow's output NAME equals VALUE.
expect() {
    local got
    got=$(output "$1" "$files/output")
    [ "$got" = "$2" ] || fail "output $1 is '$got', expected '$2'"
}

# The common checks of a flow that ran: exit code, outputs, a non-empty summary.
check() {
    local want_code=$1 env=$2 status=$3 applied=$4
    [ "$code" -eq "$want_code" ] || fail "exit code $code, expected $want_code"
    expect environment "$env"
    expect status "$status"
    [ -z "$applied" ] || expect applied-count "$applied"
    [ -s "$files/summary" ] || fail "the job summary is empty"
    if [ "$failures" -gt 0 ]; then
        sed 's/^/    /' "$files/log" >&2
    fi
}

run staging-push push refs/heads/staging '{}'
check 0 staging success "$migrations"
expect pending-count 0

run version-tag push refs/tags/v1.2.3 '{}'
check 0 production success "$migrations"
[ -n "$(output backup-marker "$files/output")" ] || fail "no backup-marker output"
# The dump is in the workspace, where a later step can upload it, and private.
dump=$(output backup-file "$files/output")
if [ -z "$dump" ] || [ ! -f "$dump" ]; then
    fail "backup-marker { dump: true } wrote no dump at the backup-file output '$dump'"
else
    [ "$(stat -c %a "$dump")" = 600 ] || fail "the dump $dump has mode $(stat -c %a "$dump"), not 600"
    rm -f "$dump"
    rmdir pgrollout-backups 2>/dev/null || true
fi

run dispatch workflow_dispatch refs/heads/main \
    '{"inputs":{"environment":"production","confirm":"MIGRATE-PRODUCTION","dry_run":"false"},"sender":{"login":"ci"}}'
check 0 production success "$migrations"

run dispatch-wrong-phrase workflow_dispatch refs/heads/main \
    '{"inputs":{"environment":"production","confirm":"migrate-production","dry_run":"false"}}'
check 3 production refused ""

if [ "$failures" -gt 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "all flows passed"
