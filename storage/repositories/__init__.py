"""Small async repository functions. They flush but never commit: the caller owns the transaction."""
