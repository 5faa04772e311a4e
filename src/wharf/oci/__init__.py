"""Pure OCI domain: digests, names, media types and manifest models. No I/O."""
