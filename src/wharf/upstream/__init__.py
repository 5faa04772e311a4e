"""Reading images from other registries (the OCI distribution API as a client): references to
them, their credentials, and a client that follows their authentication challenges. It imports
only `oci` of ours, so the registry and the API server may both use it."""
