#!/usr/bin/env bash
# Makes the committed analysis in docs/analysis/: release build of fastchat-bench, then the
# runs below, each into a folder of its own with results.csv, baselines.csv, plots/ and
# report.md. PostgreSQL runs use a database of their own, created fresh and dropped after.
#
# Needs: PostgreSQL on 127.0.0.1:5432 with trust auth (or FASTCHAT_ANALYSIS_PG=postgres://...
# pointing at a server where the user may create databases), psql.
# Usage: scripts/analysis.sh [OUT_DIR]   (default docs/analysis)
#        scripts/analysis.sh OUT_DIR RUN...   (only the named runs: matrix light scale sqlite)
# A full run takes about 25 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-docs/analysis}")
shift || true
runs=("$@")
[ ${#runs[@]} -eq 0 ] && runs=(matrix light scale sqlite)
mkdir -p "$out"

pg=${FASTCHAT_ANALYSIS_PG:-postgres://postgres@127.0.0.1:5432}
db=fastchat_analysis_$$
url="$pg/$db"
command -v psql >/dev/null || { echo "error: psql is missing (apt-get install postgresql-client)" >&2; exit 1; }

echo "==> building" >&2
cargo build --release --locked -p fastchat-bench
bench="${CARGO_TARGET_DIR:-target}/release/fastchat-bench"

fresh_database() {
    psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
}
trap 'psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $db" || true' EXIT

run() {
    local name=$1
    shift
    echo "==> $name: fastchat-bench $*" >&2
    rm -rf "${out:?}/$name"
    RUST_LOG=warn "$bench" "$@" --out "$out/$name"
}

for r in "${runs[@]}"; do
    case $r in
    matrix)
        # Every strategy over server counts, client counts and sizes on PostgreSQL, then the
        # uneven-load scenario and one server's memory at 10,000 connections.
        fresh_database
        run matrix --servers 1,2,4 --clients 10,100 --sizes 64,1024,16384 --strategies all \
            --messages 50 --uneven 20 --connections 10000 --database-url "$url"
        ;;
    light)
        # Light load (20 msg/s per client): the latency targets against INSERT+NOTIFY.
        fresh_database
        run light --servers 1,2 --clients 2,10 --sizes 64,1024,16384 --strategies round-robin \
            --rate 20 --messages 100 --database-url "$url"
        ;;
    scale)
        # 1,000 clients from one process, then the same spread over 4 processes.
        fresh_database
        run scale-1-process --servers 2 --clients 1000 --sizes 1024 --strategies least-connections \
            --messages 10 --database-url "$url"
        fresh_database
        run scale-4-processes --servers 2 --clients 1000 --sizes 1024 --strategies least-connections \
            --messages 10 --processes 4 --database-url "$url"
        ;;
    sqlite)
        # The embedded database `fastchat up` uses: one server.
        run sqlite --servers 1 --clients 2,10,100 --sizes 64,1024,16384 --strategies round-robin \
            --messages 50
        ;;
    *)
        echo "error: no run named $r (matrix light scale sqlite)" >&2
        exit 2
        ;;
    esac
done
echo "==> done: $out" >&2
