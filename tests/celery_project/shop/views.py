from celery.result import AsyncResult
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from shop.models import Order
from shop.tasks import place_order


@require_POST
def checkout(request, order_id):
    order = get_object_or_404(Order, pk=order_id)
    result = place_order(order.pk)
    return JsonResponse({"task_id": result.id}, status=202)


def job_status(request, task_id):
    result = AsyncResult(task_id)
    return JsonResponse({"state": result.state, "ready": result.ready()})
