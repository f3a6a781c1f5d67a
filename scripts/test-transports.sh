#!/usr/bin/env bash
# The tunnel, dialer and proxy end-to-end suites and the fault suite's
# isolation cases (refused port, pod deleted, API server restarted, a stream
# failing midway, slow and paused readers), once over each port-forward transport: SPDY and the
# WebSocket tunnel (KEP-4006). `npm test` and `npm run test:faults` run them
# once, over `auto` (the WebSocket tunnel against the simulator).
# Files are found by name, so the suites may move between test/ folders.
set -euo pipefail
cd "$(dirname "$0")/.."
files=()
for name in tunnel.test.ts transport.test.ts dialer.test.ts curl.test.ts pods.test.ts apiserver.test.ts midstream.test.ts slow-reader.test.ts paused-reader.test.ts; do
  while IFS= read -r f; do files+=("$f"); done < <(find test -name "$name" -not -path '*/helpers/*' | sort)
done
# `scripts/test-transports.sh websocket` runs one transport only.
failed=()
for transport in "${@:-spdy}" $([ $# -eq 0 ] && echo websocket); do
  echo "== port-forward transport: $transport (${#files[@]} files)"
  # The paused-reader case pauses 5 minutes by default; 30 s is still twice the PING timeout.
  KUBESOCKS_PAUSE_SECONDS=${KUBESOCKS_PAUSE_SECONDS:-30} KUBESOCKS_TEST_TRANSPORT=$transport \
    node --import tsx --test --test-concurrency=2 --test-timeout=600000 "${files[@]}" || failed+=("$transport")
done
# Both transports run even when the first fails, so one run says which fail where.
[ ${#failed[@]} -eq 0 ] || { echo "failed over: ${failed[*]}"; exit 1; }
