from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from notifications import preferences
from notifications.models import Notification, Preference, PushSubscription


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
    list_display = [
        "id",
        "recipient",
        "level",
        "kind",
        "title",
        "task_id",
        "created_at",
        "read_at",
        "emailed_at",
    ]
    list_filter = ["level", ReadFilter, "created_at"]
    search_fields = ["title", "body", f"recipient__{get_user_model().USERNAME_FIELD}", "task_id"]
    list_select_related = ["recipient"]
    raw_id_fields = ["recipient"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at"]


class PreferenceForm(forms.ModelForm):
    class Meta:
        model = Preference
        fields = "__all__"

    def clean(self) -> dict:
        # A row push and the digest cannot read would fail them for everyone
        # in the same batch: the API's rules hold here too.
        data = super().clean()
        try:
            preferences.check_row(
                data.get("channels"),
                data.get("quiet_start"),
                data.get("quiet_end"),
                data.get("time_zone"),
            )
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return data


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin):
    """Each person's channels, digest interval and quiet hours, checked as the API checks them."""

    form = PreferenceForm

    list_display = ["user", "digest", "quiet_start", "quiet_end", "time_zone", "updated_at"]
    list_filter = ["digest"]
    search_fields = [f"user__{get_user_model().USERNAME_FIELD}"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["updated_at"]


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    """Devices registered for Web Push; deleting one stops pushes to that browser."""

    list_display = ["id", "user", "user_agent", "created_at"]
    search_fields = [f"user__{get_user_model().USERNAME_FIELD}", "user_agent"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["endpoint", "p256dh", "auth", "user_agent", "created_at"]
