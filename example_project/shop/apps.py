"""App configuration of the demo shop."""

from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "example_project.shop"
    label = "shop"
    verbose_name = "Shop (djqueue demo)"
    default_auto_field = "django.db.models.BigAutoField"
