"""The published DuckDB warehouse: built from the lake, swapped in atomically."""
