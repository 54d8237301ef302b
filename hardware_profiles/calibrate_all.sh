#!/usr/bin/env bash
# Re-fit every shipped device profile from its datasheet prior (priors/) to the measured
# latencies its [fit] table names (measurements/). Run from the repository root:
#   bash hardware_profiles/calibrate_all.sh
# Each prior's [fit] says which files and rows (select) it is fitted to and what is free; the
# command below is the one written into each profile's [fit] command.
set -euo pipefail
cd "$(dirname "$0")/.."
for prior in hardware_profiles/priors/*.toml; do
  device=$(basename "$prior" .toml)
  files=$(python -c "import sys, tomllib; print(tomllib.load(open(sys.argv[1], 'rb'))['fit']['measurements'])" "$prior")
  loo=()
  # Two measurements only: no leave-one-out.
  if [ "$device" = coral-edgetpu ]; then loo=(--no-loo); fi
  case "$files" in *public_latency*) loo+=(--skip-unknown);; esac
  python -m roofline calibrate --measurements "$files" --hw "$prior" \
    --out "hardware_profiles/$device.toml" "${loo[@]}"
done
