#!/usr/bin/env bash
# Why this exists: /openapi.json must describe exactly what the server answers (issue 12), so CI fuzzes a running server against its own document with schemathesis, once anonymous and once as a super_admin.
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION=4.32.5
TARGET=${CARGO_TARGET_DIR:-target}
case $TARGET in /*) ;; *) TARGET="$PWD/$TARGET" ;; esac
VENV="$TARGET/schemathesis-venv"
EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-25}
# The schemathesis runs (one anonymous, five with the super_admin token) share this budget in
# seconds and are cut off when it is spent, so together they never take more than 5.5 minutes
# (the whole script about 6 once schemathesis is installed); they usually take about a minute.
FUZZ_SECONDS=${SCHEMATHESIS_SECONDS:-330}
started=$SECONDS

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qF "$ST_VERSION"; then
  echo "installing schemathesis $ST_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi
cargo build --quiet --bin gatehouse

tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
admin_email=fuzz-admin@example.com
admin_password="Fuzz-admin-$RANDOM-Pw1!"

# A fresh SQLite database; cheap password hashing (no 503 server_busy from a full queue) and
# budgets no fuzzer reaches (no 429), so the answers depend on the inputs only.
# ENCRYPTION_MASTER_KEY lets MFA enrolment answer 200; a public URL on localhost (the same
# server) gives passkeys a relying party, so their routes answer instead of 503.
env DATABASE_URL="sqlite://$tmp/gh.db" \
  GATEHOUSE_BIND="127.0.0.1:$port" \
  GATEHOUSE_PUBLIC_URL="http://localhost:$port" \
  JWT_SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')" \
  ENCRYPTION_MASTER_KEY="$(python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')" \
  ADMIN_USERNAME="$admin_email" \
  ADMIN_PASSWORD="$admin_password" \
  RATE_LIMIT_LOGIN_PER_MINUTE=1000000,1000000 \
  PASSWORD_ARGON2_MEMORY_KIB=64 \
  PASSWORD_ARGON2_ITERATIONS=1 \
  MAIL_OUTBOX_DIR="$tmp/outbox" \
  RUST_LOG=warn \
  "$TARGET/debug/gatehouse" serve >"$tmp/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
  if curl -fsS "$base/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$tmp/server.log" >&2
    echo "schemathesis: the server did not start" >&2
    exit 1
  fi
  sleep 0.2
done
curl -fsS "$base/health" >/dev/null

login() { # prints a new access token of the bootstrapped super_admin
  curl -fsS -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\": \"$admin_email\", \"password\": \"$admin_password\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
token=$(login)

# Without this, schemathesis signs up through POST /auth/register and logs in by itself: the
# anonymous pass would not be anonymous.
printf '[auth]\nauto-signup = false\n' >"$tmp/schemathesis.toml"

deadline=$((SECONDS + FUZZ_SECONDS))
st() { # run name, extra arguments...
  local name=$1 left=$((deadline - SECONDS)); shift
  echo "== schemathesis: $name"
  if [ "$left" -lt 10 ]; then
    echo "schemathesis: out of time (SCHEMATHESIS_SECONDS=$FUZZ_SECONDS) before the run '$name'" >&2
    return 1
  fi
  # The document has no `servers`: its paths are absolute (/health, /api/v1/...), so the base
  # URL is the origin the document was loaded from.
  # One worker: with two, Python 3.11.7's ast.parse (hypothesis describing lambdas) races and
  # schemathesis reports "AST constructor recursion depth mismatch" errors.
  # It runs in the temporary directory, where its .schemathesis and .hypothesis caches go (and
  # go away): every run starts fresh instead of replaying an earlier run's finds.
  (cd "$tmp" && timeout --kill-after=10 "$left" "$VENV/bin/schemathesis" --config-file "$tmp/schemathesis.toml" \
    run "$base/openapi.json" \
    --checks status_code_conformance,content_type_conformance,response_schema_conformance,not_a_server_error \
    --max-examples "$EXAMPLES" \
    --request-timeout 10 \
    --workers 1 \
    --generation-database none \
    --seed "${SCHEMATHESIS_SEED:-12}" \
    --no-color \
    "$@")
}

failed=0
passed=0
if st "anonymous"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

# Some operations end the token's session: logout, logout-all, DELETE /auth/sessions/{id}
# (schemathesis learns the session id from GET /auth/sessions) and DELETE /users/{id} (it learns
# the super_admin's id and the name `super_admin` from other answers, grants that role to a user it
# made, and may then delete the super_admin itself). After one of them every call would only see
# 401, so the super_admin pass keeps them for the end: each in a run of its own with a fresh
# login, the one that can delete the account last.
enders=('DELETE /api/v1/auth/sessions/{id}' 'POST /api/v1/auth/logout-all' 'POST /api/v1/auth/logout'
  'DELETE /api/v1/users/{id}')
exclude=()
for op in "${enders[@]}"; do exclude+=(--exclude-name "$op"); done
admin_pass() {
  st "super_admin" -H "Authorization: Bearer $token" "${exclude[@]}" || return 1
  if ! curl -fsS -o /dev/null -H "Authorization: Bearer $token" "$base/api/v1/auth/me"; then
    # PATCH /users/{id} may disable the super_admin once another one exists: not a failure.
    echo "note: the super_admin session ended during the run; the calls after that saw 401"
  fi
  local op
  for op in "${enders[@]}"; do
    if fresh=$(login); then
      token=$fresh
    else
      echo "note: the super_admin can no longer log in (disabled or deleted above); reusing the last token"
    fi
    st "super_admin, $op" -H "Authorization: Bearer $token" --include-name "$op" || return 1
  done
}
if admin_pass; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

if ! kill -0 "$server_pid" 2>/dev/null; then
  status=0
  wait "$server_pid" || status=$?
  server_pid=
  echo "schemathesis: the server exited with status $status during the run" >&2
  failed=$((failed + 1))
fi
if [ "$failed" -ne 0 ]; then
  echo "--- server log (last 50 lines)"
  tail -n 50 "$tmp/server.log"
fi
echo "schemathesis took $((SECONDS - started)) s (anonymous, then super_admin)"
echo "schemathesis: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
