"""The demo app: customers, orders, and the background tasks that serve them."""
