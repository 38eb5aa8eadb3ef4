"""The app's HTTP side: the inbox API, task progress, socket tickets, preferences
and the digest's unsubscribe link, presence, Web Push devices and service
worker, health and metrics.

A project includes it under any prefix: `path("api/notifications/", include("notifications.urls"))`.
"""

from django.urls import path

from notifications import health, push_views, views

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
    path("presence/", push_views.presence_view, name="presence"),
    path("push/subscriptions/", push_views.subscriptions, name="push-subscriptions"),
    path(
        "push/subscriptions/<int:subscription_id>/",
        push_views.subscription,
        name="push-subscription",
    ),
    path("push/sw.js", push_views.service_worker, name="push-service-worker"),
]
