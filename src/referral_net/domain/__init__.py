"""Domain services: one module per resource, keyword-only functions, explicit commits."""
