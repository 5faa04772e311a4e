"""The image-stream domain: where tags point (their history), and Images made from manifests."""
