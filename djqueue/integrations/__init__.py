"""djqueue inside other frameworks: Django's Tasks backend, test helpers, the pytest plugin."""
