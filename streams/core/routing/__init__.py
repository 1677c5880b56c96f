"""Routing: which locations serve an order, how it is split, and why."""
