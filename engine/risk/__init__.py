"""Risk engine: exit hierarchy and hard rules as deterministic functions; the model opinion merged under them."""
