"""Per-channel sellable availability: which locations serve each sales channel, what is held
back from it, and what it may sell of a sku (the figures ``dom.channel-availability.v1``
carries, and the locations routing may use for the channel's orders)."""
