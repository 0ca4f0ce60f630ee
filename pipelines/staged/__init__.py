"""Staged: one event date of one log, deduplicated (rule 5) and checked against rules 6–9."""
