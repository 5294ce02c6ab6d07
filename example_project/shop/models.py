"""The shop's data: customers, their orders, and sales reports built in the background."""

from __future__ import annotations

from django.db import models


class Customer(models.Model):
    """Someone who signed up; the welcome email is sent by a task."""

    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True)
    loyalty_points = models.PositiveIntegerField(default=0)
    joined_at = models.DateTimeField(auto_now_add=True)
    welcomed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Order(models.Model):
    """An order; a task charges it through the payment gateway."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        PAID = "paid", "Paid"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    charge_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Order #{self.pk} ({self.amount}, {self.status})"


class Report(models.Model):
    """Sales figures aggregated from the orders table by a task."""

    created_at = models.DateTimeField(auto_now_add=True)
    order_count = models.PositiveIntegerField()
    paid_count = models.PositiveIntegerField()
    revenue = models.DecimalField(max_digits=12, decimal_places=2)
    top_customer = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Report {self.created_at:%Y-%m-%d %H:%M}: {self.order_count} orders"
