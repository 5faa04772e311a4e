"""Wharf: an integrated container image registry."""
