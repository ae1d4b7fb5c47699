#!/usr/bin/env bash
# usage: peers.sh ROUNDS SECONDS NAME=URL=METHOD ...  (METHOD GET, or POST to send {} as JSON; NAME without '=')
# Each round gives every target wrk -t1 -c8 for req/s, then wrk -t1 -c1 --latency for the p50, in turns
# (benchmarks/peers.md: harness serve next to serverless-offline).
set -euo pipefail
rounds=$1; secs=$2; shift 2
post=$(mktemp); trap 'rm -f "$post"' EXIT
printf 'wrk.method = "POST"\nwrk.body = "{}"\nwrk.headers["Content-Type"] = "application/json"\n' > "$post"
for t in "$@"; do  # warm-up: 1 s each, not counted (starts serverless instances, JITs node)
  IFS='=' read -r name url method <<<"$t"; s=(); [ "$method" = POST ] && s=(-s "$post")
  wrk -t1 -c8 -d1s "${s[@]}" "$url" > /dev/null
done
for r in $(seq "$rounds"); do
  for t in "$@"; do
    IFS='=' read -r name url method <<<"$t"; s=(); [ "$method" = POST ] && s=(-s "$post")
    rps=$(wrk -t1 -c8 -d"${secs}s" "${s[@]}" "$url" | awk '/Requests\/sec/ {print $2}')
    p50=$(wrk -t1 -c1 -d"${secs}s" --latency "${s[@]}" "$url" | awk '$1 == "50%" {print $2}')
    printf 'round %s  %-22s  c8 %10s req/s   c1 p50 %s\n' "$r" "$name" "$rps" "$p50"
  done
done
