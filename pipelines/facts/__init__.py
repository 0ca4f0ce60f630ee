"""Facts: one row per accepted event with its stream and USD measures (SPEC §3)."""
