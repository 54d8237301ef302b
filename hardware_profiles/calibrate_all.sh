#!/usr/bin/env bash
# Re-fit every shipped device profile from its datasheet prior (priors/) to the measured
# latencies (measurements/measured_latency.csv). Run from the repository root:
#   bash hardware_profiles/calibrate_all.sh
set -euo pipefail
M=hardware_profiles/measurements/measured_latency.csv
for device in pixel6-cpu s23-cpu pixel1-cpu pixel2-cpu pixel3-cpu pixel4-dsp pixel7-gpu s23-gpu \
              pixel8-edgetpu iphone13-coreml; do
  python -m roofline calibrate --measurements "$M" --hw "hardware_profiles/priors/$device.toml" \
    --out "hardware_profiles/$device.toml"
done
# Two measurements only: no leave-one-out.
python -m roofline calibrate --measurements "$M" --hw hardware_profiles/priors/coral-edgetpu.toml \
  --device coral-edgetpu-usb3 --out hardware_profiles/coral-edgetpu.toml --no-loo
