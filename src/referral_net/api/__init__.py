"""HTTP layer: dependencies, request/response schemas and thin routers."""
