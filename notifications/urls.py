"""The inbox's HTTP API, included under api/notifications/ by the project."""

from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.notification_list, name="list"),
    path("unread-count/", views.unread_count, name="unread-count"),
    path("<int:notification_id>/read/", views.mark_one_read, name="read"),
    path("read-all/", views.mark_all_read, name="read-all"),
    path("ticket/", views.ticket, name="ticket"),
]
