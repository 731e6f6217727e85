"""Everything read from outside (config.json, GGUF, device and measurement files, names as people write
them), bounded and validated, turned into core records; and the one rule for files written."""
