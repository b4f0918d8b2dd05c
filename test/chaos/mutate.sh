#!/usr/bin/env bash
# Proves the chaos checker: builds cutover with a sink's version check
# disabled (a Go build overlay; no file of the tree is changed) and runs
# the given chaos scenarios against it. Each must FAIL; the script exits 0
# only if every one did.
#
#   test/chaos/mutate.sh redis    'TestChaosHotKeys$|TestChaosReplayFromZero$'
#   test/chaos/mutate.sh dynamodb 'TestChaosAmbiguousSuccess$'
#
# redis:    the apply script writes whatever version the event has
#           (sinks/redis/script.go: "if not newer(ver, cur) then return 0")
# dynamodb: the conditional put takes any other version, older ones too
#           (sinks/dynamodb/sink.go: "#v < :v" becomes "#v <> :v")
# Run from the repository root with the local stack up.
set -euo pipefail
which=${1:?redis or dynamodb}
tests=${2:?a go test -run pattern}
root=$(pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
case $which in
redis)
  file=sinks/redis/script.go
  sed 's/^  if not newer(ver, cur) then return 0 end$/  -- MUTATION: no version check/' "$file" >"$dir/mutant.go" ;;
dynamodb)
  file=sinks/dynamodb/sink.go
  sed 's/"attribute_not_exists(#v) OR #v < :v"/"attribute_not_exists(#v) OR #v <> :v"/' "$file" >"$dir/mutant.go" ;;
*) echo "unknown sink $which" >&2; exit 2 ;;
esac
if cmp -s "$file" "$dir/mutant.go"; then
  echo "the mutation did not apply to $file: its version check changed; update this script" >&2
  exit 2
fi
diff "$file" "$dir/mutant.go" || true
printf '{"Replace":{"%s":"%s"}}' "$root/$file" "$dir/mutant.go" >"$dir/overlay.json"
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
  AWS_PROFILE= AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
# GOFLAGS reaches the go build of the cutover binary the tests run too.
set +e
GOFLAGS="-overlay=$dir/overlay.json" go test -count=1 -timeout 30m -v -run "$tests" ./test/ >"$dir/out.log" 2>&1
set -e
grep -E '^=== RUN|^--- |chaos [a-z-]+ +faults=|replay:|late writes|older in the target|showed seq|held seq|deleted after' "$dir/out.log" | grep -v '^        time=' | head -60
failed=$(grep -c '^--- FAIL' "$dir/out.log" || true)
passed=$(grep -c '^--- PASS' "$dir/out.log" || true)
echo "with the $which sink's version check disabled: $failed scenarios failed, $passed passed"
[ "$passed" -eq 0 ] && [ "$failed" -gt 0 ]
