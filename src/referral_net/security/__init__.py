"""Identities and credentials: roles, password hashing, bearer tokens."""
