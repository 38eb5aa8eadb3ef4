"""The notification: the durable record that browsers are told about."""

from django.conf import settings
from django.db import models


class Level(models.TextChoices):
    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    level = models.CharField(max_length=16, choices=Level.choices, default=Level.INFO)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=2000, blank=True)
    data = models.JSONField(default=dict, blank=True)
    task_id = models.CharField(max_length=255, blank=True, db_index=True)
    # What the notification is about ("export"), named by the caller; the
    # person's preferences choose channels per kind (and per level).
    kind = models.CharField(max_length=64, blank=True)
    # Notifications with the same key that arrive close together show as one
    # toast ("3 exports finished"); the inbox still lists each.
    collapse_key = models.CharField(max_length=255, blank=True)
    # Up to two buttons: [{"label": "Download", "url": "https://…"}].
    actions = models.JSONField(default=list, blank=True)
    # Makes a publish idempotent: a second notification with the same key for
    # the same user is not saved nor sent (a Celery task delivered twice).
    dedupe_key = models.CharField(max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # When a tab first showed it (a toast, or the open inbox): "seen" is not
    # "read", and what nobody saw may go into an email digest.
    seen_at = models.DateTimeField(null=True, blank=True)
    # When an email digest took it (digest.py): never twice, and a digest is
    # due again only an interval after the user's latest one.
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # "This user's notifications after id N" (resume) and the inbox page.
            models.Index(fields=["recipient", "id"], name="notif_recipient_id"),
            # The unread badge.
            models.Index(
                fields=["recipient"],
                condition=models.Q(read_at__isnull=True),
                name="notif_recipient_unread",
            ),
            # What the digest may take: neither read, seen nor emailed yet.
            models.Index(
                fields=["created_at"],
                condition=models.Q(
                    read_at__isnull=True, seen_at__isnull=True, emailed_at__isnull=True
                ),
                name="notif_digest_candidates",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "dedupe_key"],
                condition=models.Q(dedupe_key__isnull=False),
                name="notif_unique_dedupe_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.level}: {self.title} → {self.recipient_id}"


class Digest(models.TextChoices):
    OFF = "off"
    HOURLY = "hourly"
    DAILY = "daily"


class Preference(models.Model):
    """One person's choices of channels beyond the inbox; no row means the defaults.

    `channels` is {"levels": {"info": ["email"], ...}, "kinds": {"export": ["push"]}}:
    a level or kind it does not name takes every channel (preferences.py).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="notification_preference",
    )
    channels = models.JSONField(default=dict, blank=True)
    digest = models.CharField(max_length=8, choices=Digest.choices, default=Digest.HOURLY)
    # Push waits out these local hours (start > end spans midnight); both or neither.
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    # The language of the person's digest (a code of NOTIFICATIONS_LANGUAGES);
    # blank: the site's LANGUAGE_CODE.
    language = models.CharField(max_length=16, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"


class PushSubscription(models.Model):
    """One browser's Web Push subscription (RFC 8030): where to post, and its keys.

    An endpoint belongs to one browser profile, so it is unique: when another
    person signs in on that browser and subscribes, the row moves to them.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions"
    )
    endpoint = models.URLField(max_length=1000, unique=True)
    # The browser's P-256 public key and auth secret (RFC 8291), base64url.
    p256dh = models.CharField(max_length=100)
    auth = models.CharField(max_length=50)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"push subscription {self.pk} of {self.user_id}"


class PushDelivery(models.Model):
    """A notification's push to one subscription, claimed before it is sent.

    The row is inserted before the request goes out and is unique per pair, so
    a task run twice (a retry, a redelivery) never sends one notification to
    one device twice. It is deleted again only when the push service said for
    sure that it took nothing (an error status, a refused connection).
    """

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE)
    subscription = models.ForeignKey(PushSubscription, on_delete=models.CASCADE)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "subscription"], name="push_delivery_once"
            )
        ]
