"""Landing: raw NDJSON of one arrival day → typed Parquet, applying SPEC §4 rules 1–4 per copy."""
