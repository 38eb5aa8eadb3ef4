"""Old read notifications are pruned; unread ones never are. The admin lists them."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from notifications import notify
from notifications.celery import beat
from notifications.models import Notification
from worker import app

pytestmark = pytest.mark.django_db


def aged(user, title: str, *, read_days_ago: float | None, created_days_ago: float = 400):
    n = notify(user, title)
    now = timezone.now()
    read_at = None if read_days_ago is None else now - timedelta(days=read_days_ago)
    Notification.objects.filter(pk=n.pk).update(
        created_at=now - timedelta(days=created_days_ago), read_at=read_at
    )
    return n


def test_prune_deletes_only_old_read_notifications(alice, capsys):
    old_read = aged(alice, "Old and read", read_days_ago=100)
    recent_read = aged(alice, "Read last week", read_days_ago=7)
    old_unread = aged(alice, "Old but never read", read_days_ago=None)
    call_command("prune_notifications", "--days", "30")
    assert capsys.readouterr().out.strip() == "Deleted 1 read notification(s) older than 30 days."
    remaining = set(Notification.objects.values_list("pk", flat=True))
    assert remaining == {recent_read.pk, old_unread.pk}
    assert old_read.pk not in remaining


def test_beat_runs_the_prune_task_on_a_schedule(alice):
    # notifications.celery put the entry into the project's app when Django was ready.
    entry = app.conf.beat_schedule[beat.ENTRY]
    assert entry["schedule"] == 6 * 3600
    app.loader.import_default_modules()
    task = app.tasks[entry["task"]]
    aged(alice, "Old and read", read_days_ago=400)
    assert task.apply().get() == 1
    assert not Notification.objects.exists()


def test_admin_lists_notifications_with_filters(admin_client, alice):
    notify(alice, "Visible in the admin", level="warning")
    response = admin_client.get("/admin/notifications/notification/?level__exact=warning&read=no")
    assert response.status_code == 200
    assert "Visible in the admin" in response.content.decode()
