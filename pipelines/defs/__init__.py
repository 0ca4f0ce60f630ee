"""Dagster definitions, one module per layer of the data flow:
landing → staged → facts → marts → quality → warehouse (→ reports)."""
