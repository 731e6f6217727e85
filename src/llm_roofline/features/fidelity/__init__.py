"""The efficiency model against measurements: validation and the parameter fit."""
