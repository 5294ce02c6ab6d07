from django.contrib import admin

from shop.models import Order, Payment, SalesReport

admin.site.register(Order)
admin.site.register(Payment)
admin.site.register(SalesReport)
