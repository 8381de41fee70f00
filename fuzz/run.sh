#!/usr/bin/env bash
# Builds the WeftWire libFuzzer targets with the toolchain's libFuzzer + AddressSanitizer and
# runs each for ITERATIONS inputs, growing a corpus under fuzz/corpus/TARGET (gitignored).
#
# Usage: fuzz/run.sh ITERATIONS [TARGET...]     targets: ethernet arp ipv4 ipv6 icmp udp vxlan frame vtep
# Extra libFuzzer flags can be passed in FUZZ_FLAGS (e.g. FUZZ_FLAGS="-max_len=4096 -jobs=2").
# Exit status is non-zero when any target crashed; the input is saved under fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")"

runs=${1:?usage: run.sh ITERATIONS [TARGET...]}
shift
all=(ethernet arp ipv4 ipv6 icmp udp vxlan frame vtep)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

build=(swift build -c debug --scratch-path .build-fuzz
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)
"${build[@]}" >&2
bin=$("${build[@]}" --show-bin-path)

# Seed each corpus with well-formed frames once (needs /usr/bin/python3 with scapy; optional).
missing=0
for t in "${all[@]}"; do [ -d "corpus/$t" ] || missing=1; done
if [ "$missing" = 1 ] && /usr/bin/python3 -c 'import scapy' 2>/dev/null; then
  /usr/bin/python3 seeds.py corpus >&2
fi

failed=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="artifacts/$t/last-run.log"
  start=$(date +%s)
  set +e
  # shellcheck disable=SC2086
  "$bin/fuzz-$t" -runs="$runs" -max_len=9216 -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
    ${FUZZ_FLAGS:-} "corpus/$t" >"$log" 2>&1
  status=$?
  set -e
  secs=$(($(date +%s) - start))
  executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  corpus=$(find "corpus/$t" -type f | wc -l)
  if [ "$status" -eq 0 ]; then
    result=clean
  else
    result="CRASH (exit $status, see $log; input in artifacts/$t/)"
    failed=1
  fi
  printf 'fuzz-%-9s runs=%-9s cov=%-6s corpus=%-6s time=%5ss %s\n' \
    "$t" "${executed:-?}" "${cov:-?}" "$corpus" "$secs" "$result"
done
exit $failed
