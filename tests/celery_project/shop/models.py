from django.db import models


class Order(models.Model):
    email = models.EmailField()
    total = models.DecimalField(max_digits=10, decimal_places=2)
    paid = models.BooleanField(default=False)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Order #{self.pk}"


class Payment(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="payments")
    reference = models.CharField(max_length=64)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    # The task that charged, to find its log lines and result.
    task_id = models.CharField(max_length=255)
    attempts = models.PositiveIntegerField()

    def __str__(self):
        return self.reference


class Cart(models.Model):
    email = models.EmailField(blank=True)
    updated_at = models.DateTimeField()

    def __str__(self):
        return f"Cart #{self.pk}"


class SalesReport(models.Model):
    first_day = models.DateField()
    days = models.PositiveIntegerField(default=1)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    partial = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["first_day", "days"], name="one_report_per_period")
        ]

    def __str__(self):
        return f"Sales from {self.first_day} ({self.days} days)"


class GatewayCheck(models.Model):
    checked_at = models.DateTimeField(auto_now_add=True)
    up = models.BooleanField()
    note = models.CharField(max_length=200, blank=True)

    def __str__(self):
        return f"{'up' if self.up else 'down'} at {self.checked_at}"
