"""``ToolGym/Booking-v0``: airline customer service over a stateful database, following a policy."""
