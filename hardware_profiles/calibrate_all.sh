#!/usr/bin/env bash
# Re-fit every shipped device profile from its datasheet prior (priors/) to the measured
# latencies its [fit] table names (measurements/). Run from the repository root:
#   bash hardware_profiles/calibrate_all.sh
# Each prior's [fit] says which files and rows (select) it is fitted to and what is free; the
# command below is the one written into each profile's [fit] command.
set -euo pipefail
cd "$(dirname "$0")/.."
# Fitted together below, in one joint calibrate call: the TF-Lite XNNPACK CPUs.
joint=" pixel6-cpu s23-cpu "
for prior in hardware_profiles/priors/*.toml; do
  device=$(basename "$prior" .toml)
  case "$joint" in *" $device "*) continue;; esac
  files=$(python -c "import sys, tomllib; print(tomllib.load(open(sys.argv[1], 'rb'))['fit']['measurements'])" "$prior")
  loo=()
  # Two measurements only: no leave-one-out.
  if [ "$device" = coral-edgetpu ]; then loo=(--no-loo); fi
  case "$files" in *public_latency*) loo+=(--skip-unknown);; esac
  python -m roofline calibrate --measurements "$files" --hw "$prior" \
    --out "hardware_profiles/$device.toml" "${loo[@]}"
done
# The XNNPACK CPUs run depthwise convolutions through the same micro-kernels: they share the
# ratio of their depthwise to their dense efficiency, each core keeping its own dense one
# (better than separate fits on the held-out splits of benchmarks/bench_fit.py --joint xnnpack;
# README, "Accuracy of the device profiles").
python -m roofline calibrate --measurements hardware_profiles/measurements/measured_latency.csv \
  --hw hardware_profiles/priors/pixel6-cpu.toml,hardware_profiles/priors/s23-cpu.toml \
  --share efficiency.depthwise_conv/efficiency.conv+pointwise_conv+linear+matmul \
  --out hardware_profiles/pixel6-cpu.toml,hardware_profiles/s23-cpu.toml
