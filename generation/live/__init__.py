"""Live events: the one send helper, group names and the event vocabulary."""
