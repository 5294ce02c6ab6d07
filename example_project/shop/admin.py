"""Admin pages for the shop's data."""

from django.contrib import admin

from example_project.shop import models


@admin.register(models.Customer)
class CustomerAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "email", "loyalty_points", "joined_at", "welcomed_at")
    search_fields = ("name", "email")


@admin.register(models.Order)
class OrderAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("id", "customer", "amount", "status", "charge_id", "created_at")
    list_filter = ("status",)


@admin.register(models.Report)
class ReportAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("created_at", "order_count", "paid_count", "revenue", "top_customer")
