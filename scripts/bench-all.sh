#!/usr/bin/env bash
# Runs every figure of docs/performance.md three times, printing one JSON line per run.
# Usage: scripts/bench-all.sh [RUNS]   (release build first: cargo build --release)
# PostgreSQL runs use a scratch database on 127.0.0.1:5432 (user postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/verihook
runs=${1:-3}
pg=postgres://postgres@127.0.0.1:5432
fresh_pg() {
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS verihook_bench" -qc "CREATE DATABASE verihook_bench"
  echo "$pg/verihook_bench"
}
last() { tail -n 1; }
for _ in $(seq "$runs"); do
  $bin bench --events 20000 --concurrency 64 --json 2>/dev/null | last
  $bin bench --events 20000 --concurrency 64 --json --database-url "$(fresh_pg)" 2>/dev/null | last
  $bin bench --rate 1000 --duration 20s --json 2>/dev/null | last
  $bin bench --scenario dead-endpoint --events 30000 --concurrency 32 --json 2>/dev/null | last
  $bin bench --scenario backlog --events 200000 --concurrency 64 --json 2>/dev/null | last
done
