"""Database layer: engine construction, column types and the table models."""
