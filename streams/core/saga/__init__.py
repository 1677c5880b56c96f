"""The order saga: one order from placement to its end, with its actions, timers,
backorders and retention."""
