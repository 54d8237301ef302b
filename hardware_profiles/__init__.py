"""The shipped hardware profiles: one TOML file per device (installed as roofline.profiles).

No code: this file only makes the folder a package so the profiles install with roofline.
``measurements/`` holds the measured latencies the device profiles are fitted to.
"""
