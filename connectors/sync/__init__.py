"""The channel sync (`dom sync`): what happened to an order, told back to the channel it came from.

- `calls`: which calls a status asks for (pure).
- `backoff`: when to try again, and how fast a channel may be called (pure).
- `http`: one HTTP exchange, its answer sorted into done, try again, or give up.
- `shopify` and `amazon`: each channel's API, with the checks that keep a call from being
  made twice.
- `service`: the process: reads the status topic, makes the calls, records each one on
  ``dom.channel-sync.v1``, dead-letters what cannot be done.
- `journal`: reading that record back (`dom sync status`, `dom sync retry`, the console).
"""
