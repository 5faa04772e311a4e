"""The control plane's API: Kubernetes REST conventions over the object store."""
