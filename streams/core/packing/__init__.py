"""Cartons: the box catalogue and how a shipment is packed."""
