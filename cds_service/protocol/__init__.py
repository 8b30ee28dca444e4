"""CDS Hooks 2.0 wire models: what clients send us and what we answer."""
