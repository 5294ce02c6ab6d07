from django.contrib import admin
from django.urls import path
from shop import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("orders/<int:order_id>/checkout/", views.checkout, name="checkout"),
    path("jobs/<str:task_id>/", views.job_status, name="job-status"),
]
