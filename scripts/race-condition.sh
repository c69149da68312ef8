#!/usr/bin/env bash
# Write-then-read race test against any running RERUM server (bash + curl + jq), like the seed's.
#
#   scripts/race-condition.sh [BASE_URL] [PAIRS]
#
# BASE_URL defaults to http://127.0.0.1:3001; PAIRS (default 100) pairs of each kind. The token comes
# from $TOKEN, or from `rerum token` for a local server. Every request is a new curl (a new
# connection), so reads land on any worker. Each pair warms the cache with reads, writes, then reads
# and checks the exact expected content.
set -euo pipefail

BASE=${1:-http://127.0.0.1:3001}
PAIRS=${2:-100}
TOKEN=${TOKEN:-$(rerum token --agent "https://example.org/agent/race-test")}
AUTH="Authorization: Bearer $TOKEN"
JSON="Content-Type: application/json"
fresh=0
stale=0
other_worker=0

worker_of() { grep -i '^x-rerum-worker:' "$1" | tr -d '\r' | cut -d' ' -f2; }

check() { # check <kind> <fresh: 0|1> <write headers> <read headers>
    if [ "$2" = 1 ]; then fresh=$((fresh + 1)); else stale=$((stale + 1)); echo "STALE: $1" >&2; fi
    [ "$(worker_of "$3")" != "$(worker_of "$4")" ] && other_worker=$((other_worker + 1))
    return 0
}

wh=$(mktemp) rh=$(mktemp)
trap 'rm -f "$wh" "$rh"' EXIT

for i in $(seq 1 "$PAIRS"); do
    mark="race-$RANDOM-$RANDOM-$i"

    # overwrite → id
    id=$(curl -sf -X POST "$BASE/v1/api/create" -H "$AUTH" -H "$JSON" -d "{\"mark\":\"$mark\",\"n\":0}" | jq -r '.["@id"]')
    key=${id##*/}
    for _ in 1 2 3; do curl -sf -o /dev/null "$BASE/v1/id/$key"; done
    curl -sf -D "$wh" -o /dev/null -X PUT "$BASE/v1/api/overwrite" -H "$AUTH" -H "$JSON" -d "{\"@id\":\"$id\",\"n\":1}"
    n=$(curl -sf -D "$rh" "$BASE/v1/id/$key" | jq -r '.n')
    check "overwrite→id $key n=$n" "$([ "$n" = 1 ] && echo 1 || echo 0)" "$wh" "$rh"

    # update → id (the old version lists the new one)
    new=$(curl -sf -D "$wh" -X PUT "$BASE/v1/api/update" -H "$AUTH" -H "$JSON" -d "{\"@id\":\"$id\",\"n\":2}" | jq -r '.["@id"]')
    next=$(curl -sf -D "$rh" "$BASE/v1/id/$key" | jq -r '.__rerum.history.next | join(",")')
    check "update→id $key next=$next" "$([ "$next" = "$new" ] && echo 1 || echo 0)" "$wh" "$rh"

    # create → query
    for _ in 1 2 3; do curl -sf -o /dev/null -X POST "$BASE/v1/api/query" -H "$JSON" -d "{\"q\":\"$mark\"}"; done
    made=$(curl -sf -D "$wh" -X POST "$BASE/v1/api/create" -H "$AUTH" -H "$JSON" -d "{\"q\":\"$mark\"}" | jq -r '.["@id"]')
    found=$(curl -sf -D "$rh" -X POST "$BASE/v1/api/query" -H "$JSON" -d "{\"q\":\"$mark\"}" | jq -r '[.[]["@id"]] | join(",")')
    check "create→query $mark found=$found" "$([ "$found" = "$made" ] && echo 1 || echo 0)" "$wh" "$rh"

    # delete → id
    for _ in 1 2 3; do curl -sf -o /dev/null "$BASE/v1/id/${made##*/}"; done
    curl -sf -D "$wh" -o /dev/null -X DELETE "$BASE/v1/api/delete/${made##*/}" -H "$AUTH"
    deleted=$(curl -sf -D "$rh" "$BASE/v1/id/${made##*/}" | jq -r 'has("__deleted")')
    check "delete→id ${made##*/}" "$([ "$deleted" = true ] && echo 1 || echo 0)" "$wh" "$rh"
done

total=$((fresh + stale))
echo "Pairs: $total, read on another worker than the write: $other_worker"
echo "Fresh data: $fresh ($((100 * fresh / total))%), Stale data: $stale ($((100 * stale / total))%)"
[ "$stale" = 0 ]
