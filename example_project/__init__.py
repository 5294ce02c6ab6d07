"""An example Django project that uses djqueue: a small shop with background tasks."""
