"""SQL, always scoped by organization; rows come back as pydantic models."""
