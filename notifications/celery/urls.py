"""Task endpoints, under any prefix:
`path("api/tasks/", include("notifications.celery.urls"))`."""

from django.urls import path

from notifications.celery import views

app_name = "notifications_celery"

urlpatterns = [
    path("<str:task_id>/cancel/", views.cancel_task, name="cancel"),
]
