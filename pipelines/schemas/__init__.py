"""pandera (polars backend) models: the single source of each log's field rules."""
