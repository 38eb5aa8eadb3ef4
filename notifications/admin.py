from django.contrib import admin
from django.contrib.auth import get_user_model

from notifications.models import Notification, PushSubscription


class ReadFilter(admin.SimpleListFilter):
    title = "read"
    parameter_name = "read"

    def lookups(self, request, model_admin):
        return [("yes", "Read"), ("no", "Unread")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(read_at__isnull=self.value() == "no")
        return queryset


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["id", "recipient", "level", "title", "task_id", "created_at", "read_at"]
    list_filter = ["level", ReadFilter, "created_at"]
    search_fields = ["title", "body", f"recipient__{get_user_model().USERNAME_FIELD}", "task_id"]
    list_select_related = ["recipient"]
    raw_id_fields = ["recipient"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at"]


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    """Devices registered for Web Push; deleting one stops pushes to that browser."""

    list_display = ["id", "user", "user_agent", "created_at"]
    search_fields = [f"user__{get_user_model().USERNAME_FIELD}", "user_agent"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["endpoint", "p256dh", "auth", "user_agent", "created_at"]
