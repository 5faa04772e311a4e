"""Blob bytes: one `BlobStore` protocol and its implementations. Knows bytes, not repositories."""
