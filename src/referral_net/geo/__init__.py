"""Pure geometry helpers: format conversion, geodesic measures and Guatemala's outline."""
