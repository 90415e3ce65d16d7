"""The path every API route is served under, written once for the resolver, the local stack and the
benchmarks."""

API_PREFIX = "/api/v1"
