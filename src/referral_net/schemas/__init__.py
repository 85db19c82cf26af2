"""Request and response models: separate from the tables (GeoJSON on the wire, WKB in the DB)."""
