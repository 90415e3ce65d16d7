"""HTTP glue: the resolver factory, error envelope, authentication, pagination and ETags."""
