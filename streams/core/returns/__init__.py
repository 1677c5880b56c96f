"""Returns: the RMA, the return location and the printable label."""
