"""Query results in S3: gzip JSON Lines chunks plus a manifest, paged and exported chunk by chunk."""
