"""Stock per sku and location, and the backorder line its owner keeps: the owner applies
every stock event and sku command."""
