"""Commands of `minigrad` that belong to no tool of their own (see `minigrad.cli`)."""
