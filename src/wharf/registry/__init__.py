"""The OCI Distribution `/v2/` API: handlers, upload sessions, errors and the access seam."""
