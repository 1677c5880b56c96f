"""Per-channel sellable availability: which locations serve each sales channel, what is held
back from it, and what it may sell of a sku (the figures each sku's availability record
carries, and the locations routing may use for the channel's orders)."""
