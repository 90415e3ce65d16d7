"""Domain rules and authorization; nothing here knows about HTTP or Lambda events."""
