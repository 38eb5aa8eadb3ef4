"""The app's HTTP side: the inbox API, task progress, socket tickets, preferences
and the digest's unsubscribe link, health and metrics.

A project includes it under any prefix: `path("api/notifications/", include("notifications.urls"))`.
"""

from django.urls import path

from notifications import health, views

app_name = "notifications"

urlpatterns = [
    path("", views.notification_list, name="list"),
    path("unread-count/", views.unread_count, name="unread-count"),
    path("<int:notification_id>/read/", views.mark_one_read, name="read"),
    path("read-all/", views.mark_all_read, name="read-all"),
    path("progress/<str:task_id>/", views.task_progress, name="progress"),
    path("ticket/", views.ticket, name="ticket"),
    path("preferences/", views.user_preferences, name="preferences"),
    path("digest/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("health/", health.healthz, name="health"),
    path("metrics/", views.metrics, name="metrics"),
]
