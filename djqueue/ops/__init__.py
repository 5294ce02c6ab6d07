"""The console for the person on call: the admin, views and URLs, stats, metrics, charts
and system checks."""
