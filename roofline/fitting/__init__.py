"""Fitting and checking profiles: measurement files, calibration, local measurement, validation."""
