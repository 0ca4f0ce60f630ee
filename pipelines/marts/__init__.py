"""Marts: SQL files under sql/marts run by DuckDB over one event date of facts."""
