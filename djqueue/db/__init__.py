"""The data layer: the models, every SQL statement, and the only code that writes queue
and schedule state (the broker), plus the connections it needs (sessions, the listener)."""
