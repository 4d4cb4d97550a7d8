#!/usr/bin/env bash
# Profiles `verihook serve` under the bench's closed loop: where its CPU goes.
#
#   scripts/profile.sh perf      [EVENTS] [DATABASE_URL]   sampled call graphs (perf record)
#   scripts/profile.sh callgrind [EVENTS] [DATABASE_URL]   instruction counts (valgrind),
#                                                          which do not drift with the machine
#
# The server runs alone under the profiler; the bench (`--target`) drives it from outside,
# so its own CPU is not in the profile. Defaults: 50,000 events (perf) or 2,000 (callgrind,
# ~50× slower), a fresh SQLite file. Prints the report of scripts/profile-components.py
# (CPU by component) and leaves the raw profile in the printed directory.
# Needs: a release build (cargo build --release; it keeps debug symbols), perf or valgrind.
# VERIHOOK_BIN=path profiles another build (to compare two); VERIHOOK_BENCH_ARGS adds bench
# options (e.g. "--scenario fan-out").
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: scripts/profile.sh perf|callgrind [EVENTS] [DATABASE_URL]}
bin=${VERIHOOK_BIN:-$PWD/target/release/verihook}
dir=$(mktemp -d)
if [[ $mode == callgrind ]]; then events=${2:-2000}; else events=${2:-50000}; fi
export VERIHOOK_DATABASE_URL=${3:-sqlite://$dir/profile.db}
export VERIHOOK_LISTEN=127.0.0.1:0 VERIHOOK_ADMIN_TOKEN=profile-$$ VERIHOOK_ALLOW_HTTP=true \
    VERIHOOK_ALLOW_PRIVATE_NETWORKS=true VERIHOOK_RATE_LIMIT=0 RUST_LOG=error
case $mode in
perf)
    perf record -F 999 --call-graph dwarf,16384 -o "$dir/perf.data" -- \
        "$bin" serve > "$dir/server.out" 2> "$dir/server.err" &
    ;;
callgrind)
    valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
        "$bin" serve > "$dir/server.out" 2> "$dir/server.err" &
    ;;
*) echo "mode: perf or callgrind" >&2; exit 2 ;;
esac
profiler=$!
base=
for _ in $(seq 600); do
    base=$(sed -n 's/^verihook listening on //p' "$dir/server.out")
    [[ -n $base ]] && break
    sleep 0.1
done
[[ -n $base ]] || { cat "$dir/server.err" >&2; exit 1; }
"$bin" bench --target "$base" --admin-token "$VERIHOOK_ADMIN_TOKEN" \
    --events "$events" --concurrency 64 --drain-timeout 600s ${VERIHOOK_BENCH_ARGS:-} --json | tail -n 1 > "$dir/bench.json"
# The server's CPU (user + system, in 1/100 s) for the per-event figures; then SIGTERM:
# it stops gracefully, and the profiler writes its file.
if [[ $mode == perf ]]; then server=$(pgrep -P "$profiler"); else server=$profiler; fi
awk '{ sub(/.*\) /, ""); print ($12 + $13) / 100 }' "/proc/$server/stat" > "$dir/cpu"
kill -TERM "$server"
wait "$profiler" || true
echo "profile in $dir; bench: $(cat "$dir/bench.json")"
python3 scripts/profile-components.py "$mode" "$dir" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["events"])' "$dir/bench.json")"
