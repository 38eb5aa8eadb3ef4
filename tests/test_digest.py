"""The email digest, sent through Django's SMTP backend to a real SMTP server process."""

import re
import sys
import threading
from datetime import timedelta

import pytest
from celery import current_app
from django.core import signing
from django.db import connection
from django.test import Client
from django.utils import timezone

from config.redis_server import free_port
from notifications import digest
from notifications.celery import beat
from notifications.celery.tasks import send_digests
from notifications.models import Notification, Preference
from tests.smtp import SmtpServer
from tests.stack import running, wait_for

pytestmark = pytest.mark.django_db

SITE = "https://notify.example.com"


@pytest.fixture(scope="module")
def smtp(tmp_path_factory):
    server = SmtpServer(tmp_path_factory.mktemp("smtp")).start()
    yield server
    server.stop()


@pytest.fixture
def mail(smtp, settings):
    """Django's real SMTP backend pointed at the server; an empty maildir."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp.port
    settings.EMAIL_TIMEOUT = 10
    settings.DEFAULT_FROM_EMAIL = "notices@notify.example.com"
    settings.NOTIFICATIONS_SITE_URL = SITE
    settings.NOTIFICATIONS_DIGEST_AFTER_MINUTES = 30
    settings.NOTIFICATIONS_DIGEST_DEFAULT = "hourly"
    smtp.clear()
    return smtp


@pytest.fixture
def now():
    return timezone.now()


def person(django_user_model, name: str, email: str | None = None):
    return django_user_model.objects.create_user(
        f"digest-{name}", email=email if email is not None else f"{name}@example.com"
    )


def add(user, title: str, now, *, minutes_ago: float = 60, **fields) -> Notification:
    """A notification made `minutes_ago` before `now` (fields: level, task_id, kind, url, ...)."""
    n = Notification.objects.create(recipient=user, title=title, **fields)
    Notification.objects.filter(pk=n.pk).update(created_at=now - timedelta(minutes=minutes_ago))
    return n


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(("html",)).get_content()


def listed(message) -> list[str]:
    """The titles the plain-text part lists, in order."""
    return [
        re.sub(r"^\[\w+\] ", "", line[2:])
        for line in text_of(message).splitlines()
        if line.startswith("- ")
    ]


def unsubscribe_path(message) -> str:
    link = re.search(r"Stop these emails: (\S+)", text_of(message))[1]
    assert link.startswith(SITE + "/")
    return link.removeprefix(SITE)


def test_the_digest_lists_what_nobody_saw_with_own_task_errors_first(mail, django_user_model, now):
    ann = person(django_user_model, "ann")
    other = person(django_user_model, "ann-other")
    add(ann, "Weekly summary", now, minutes_ago=90, body="All quiet this week.")
    add(ann, "Export failed", now, minutes_ago=120, level="error", task_id="t-1")
    add(ann, "Disk <almost> full", now, minutes_ago=60, level="warning", url="/disks/1")
    add(ann, "Sign-in from a new device", now, minutes_ago=45, level="error")
    add(ann, "Seen in a tab", now, seen_at=now - timedelta(minutes=50))
    add(ann, "Already read", now, read_at=now - timedelta(minutes=50))
    add(ann, "Just now", now, minutes_ago=5)
    add(ann, "Last month", now, minutes_ago=10 * 24 * 60)
    add(other, "For someone else", now)

    assert digest.send_due(now) == 2

    (message,) = mail.to("ann@example.com")
    assert message["Subject"] == "4 notifications you have not seen"
    assert message["From"] == "notices@notify.example.com"
    assert listed(message) == [
        "Export failed",
        "Sign-in from a new device",
        "Disk <almost> full",
        "Weekly summary",
    ]
    text = text_of(message)
    assert "All quiet this week." in text
    assert f"{SITE}/disks/1" in text
    html = html_of(message)
    assert f'<a href="{SITE}/disks/1">Disk &lt;almost&gt; full</a>' in html
    assert "Seen in a tab" not in text + html
    assert "Already read" not in text + html
    assert "For someone else" not in text + html
    unsubscribe = SITE + unsubscribe_path(message)
    assert message["List-Unsubscribe"].strip() == f"<{unsubscribe}>"  # folded: one long line
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f'href="{unsubscribe}"' in html
    assert listed(*mail.to("ann-other@example.com")) == ["For someone else"]


def test_a_second_run_never_emails_a_notification_again(mail, django_user_model, now):
    bea = person(django_user_model, "bea")
    add(bea, "First batch", now)
    assert digest.send_due(now) == 1
    assert digest.send_due(now) == 0
    assert digest.send_due(now + timedelta(hours=3)) == 0
    assert len(mail.to("bea@example.com")) == 1

    add(bea, "Second batch", now, minutes_ago=-30)  # made 30 minutes after the first run
    assert digest.send_due(now + timedelta(hours=4)) == 1
    first, second = mail.to("bea@example.com")
    assert listed(first) == ["First batch"]
    assert listed(second) == ["Second batch"]


def test_hourly_daily_and_off_each_keep_their_interval(mail, django_user_model, now):
    hourly = person(django_user_model, "hourly")
    daily = person(django_user_model, "daily")
    off = person(django_user_model, "off")
    Preference.objects.create(user=daily, digest="daily")
    Preference.objects.create(user=off, digest="off")
    for user in (hourly, daily, off):
        add(user, "Before the first run", now)
    assert digest.send_due(now) == 2

    for user in (hourly, daily, off):
        add(user, "Soon after", now, minutes_ago=-5)
    assert digest.send_due(now + timedelta(minutes=59)) == 0  # not an hour yet
    assert digest.send_due(now + timedelta(minutes=60)) == 1
    assert [listed(m) for m in mail.to("hourly@example.com")] == [
        ["Before the first run"],
        ["Soon after"],
    ]
    assert digest.send_due(now + timedelta(hours=23, minutes=59)) == 0
    assert digest.send_due(now + timedelta(hours=24)) == 1
    assert [listed(m) for m in mail.to("daily@example.com")] == [
        ["Before the first run"],
        ["Soon after"],
    ]
    assert mail.to("off@example.com") == []
    assert not Notification.objects.filter(recipient=off, emailed_at__isnull=False).exists()


def test_following_the_unsubscribe_link_turns_the_digest_off(mail, django_user_model, now):
    cleo = person(django_user_model, "cleo")
    add(cleo, "Before unsubscribing", now)
    assert digest.send_due(now) == 1
    path = unsubscribe_path(*mail.to("cleo@example.com"))

    browser = Client(enforce_csrf_checks=True)  # not signed in
    page = browser.get(path)
    assert page.status_code == 200
    assert b"Stop digest emails?" in page.content
    assert not Preference.objects.filter(user=cleo).exists()  # asking changes nothing

    done = browser.post(path)
    assert done.status_code == 200
    assert b"Digest turned off" in done.content
    assert Preference.objects.get(user=cleo).digest == "off"

    add(cleo, "After unsubscribing", now, minutes_ago=-60)
    assert digest.send_due(now + timedelta(days=2)) == 0
    assert len(mail.to("cleo@example.com")) == 1


def test_a_mail_clients_one_click_post_unsubscribes(mail, django_user_model, now):
    dora = person(django_user_model, "dora")
    Preference.objects.create(user=dora, digest="daily", time_zone="Asia/Tokyo")
    add(dora, "One click", now)
    assert digest.send_due(now) == 1
    path = unsubscribe_path(*mail.to("dora@example.com"))
    response = Client(enforce_csrf_checks=True).post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    kept = Preference.objects.get(user=dora)
    assert (kept.digest, kept.time_zone) == ("off", "Asia/Tokyo")  # only the digest changed


@pytest.mark.parametrize(
    "forge",
    [
        lambda user_id: signing.dumps(user_id),  # signed, but not for this purpose
        lambda user_id: digest.unsubscribe_token(user_id)[:-2] + "xx",
        lambda user_id: "not-a-token",
        lambda user_id: digest.unsubscribe_token(True),
    ],
)
def test_a_forged_unsubscribe_link_changes_nothing(mail, django_user_model, forge):
    eve = person(django_user_model, "eve")
    path = f"/api/notifications/digest/unsubscribe/{forge(eve.pk)}/"
    client = Client()
    assert client.get(path).status_code == 404
    response = client.post(path)
    assert response.status_code == 404
    assert b"This link is not valid" in response.content
    assert not Preference.objects.filter(user=eve).exists()


def test_preferences_choose_what_the_digest_takes_but_cannot_mute_a_critical_level(
    mail, django_user_model, now, settings
):
    settings.NOTIFICATIONS_CRITICAL_LEVELS = ("error",)
    fay = person(django_user_model, "fay")
    # Saved before the operator made "error" critical (the API now refuses to mute it).
    Preference.objects.create(
        user=fay, channels={"levels": {"info": [], "error": []}, "kinds": {"export": ["push"]}}
    )
    muted = [
        add(fay, "Info, email off for info", now),
        add(fay, "Export warning, email off for exports", now, level="warning", kind="export"),
    ]
    add(fay, "Backup warning", now, level="warning", kind="backup")
    add(fay, "Critical error", now, level="error", kind="export")
    assert digest.send_due(now) == 1
    (message,) = mail.to("fay@example.com")
    assert listed(message) == ["Critical error", "Backup warning"]
    assert all(Notification.objects.get(pk=n.pk).emailed_at is None for n in muted)


def test_people_without_an_email_address_are_skipped_and_their_rows_kept(
    mail, django_user_model, now
):
    gus = person(django_user_model, "gus", email="")
    n = add(gus, "Nowhere to send", now)
    assert digest.send_due(now) == 0
    assert mail.messages() == []
    gus.email = "gus@example.com"
    gus.save()
    assert digest.send_due(now) == 1
    assert listed(*mail.to("gus@example.com")) == ["Nowhere to send"]
    assert Notification.objects.get(pk=n.pk).emailed_at == now


def test_inactive_people_get_no_digest(mail, django_user_model, now):
    ian = person(django_user_model, "ian")
    ian.is_active = False
    ian.save()
    add(ian, "Left the company", now)
    assert digest.send_due(now) == 0
    assert mail.messages() == []


def test_a_failed_send_leaves_the_notifications_for_the_next_run(
    mail, django_user_model, now, settings
):
    hal = person(django_user_model, "hal")
    n = add(hal, "Retried", now)
    settings.EMAIL_PORT = free_port()  # nothing listens there
    assert digest.send_due(now) == 0
    assert Notification.objects.get(pk=n.pk).emailed_at is None
    settings.EMAIL_PORT = mail.port
    assert digest.send_due(now + timedelta(minutes=5)) == 1
    assert listed(*mail.to("hal@example.com")) == ["Retried"]


def test_without_a_site_url_nothing_is_sent_nor_claimed(mail, django_user_model, now, settings):
    settings.NOTIFICATIONS_SITE_URL = ""
    jo = person(django_user_model, "jo")
    n = add(jo, "No links without a site", now)
    assert digest.send_due(now) == 0
    assert mail.messages() == []
    assert Notification.objects.get(pk=n.pk).emailed_at is None


def test_beat_schedules_the_digest_task_once_the_site_url_is_set(mail, django_user_model, settings):
    schedule = current_app.conf.beat_schedule
    schedule.pop(beat.DIGEST_ENTRY, None)
    try:
        settings.NOTIFICATIONS_SITE_URL = ""
        beat.add_digest_entry()
        assert beat.DIGEST_ENTRY not in schedule
        settings.NOTIFICATIONS_SITE_URL = SITE
        settings.NOTIFICATIONS_DIGEST_EVERY = 120
        beat.add_digest_entry()
        assert schedule[beat.DIGEST_ENTRY] == {
            "task": "notifications.celery.tasks.send_digests",
            "schedule": 120,
        }
    finally:
        schedule.pop(beat.DIGEST_ENTRY, None)
    kim = person(django_user_model, "kim")
    add(kim, "From the task", timezone.now())
    assert send_digests.apply().get() == 1
    assert listed(*mail.to("kim@example.com")) == ["From the task"]


@pytest.mark.e2e
@pytest.mark.slow
def test_celery_beat_has_a_real_worker_send_each_digest_once(tmp_path_factory, smtp):
    smtp.clear()
    env = {
        "NOTIFICATIONS_SITE_URL": SITE,
        "NOTIFICATIONS_DIGEST_EVERY": "1",
        "NOTIFICATIONS_DIGEST_AFTER_MINUTES": "0",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "DEFAULT_FROM_EMAIL": "notices@notify.example.com",
    }
    workdir = tmp_path_factory.mktemp("digest-stack")
    with running(workdir, "digest-stack", env=env) as stack:
        stack.shell_json(
            "from django.contrib.auth.models import User\n"
            "from notifications import notify\n"
            "lou = User.objects.create_user('digest-lou', email='lou@example.com')\n"
            "notify(lou, 'Sent by beat', level='warning')\n"
            "result = lou.pk"
        )
        stack._spawn(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker",
                "beat",
                "--schedule",
                str(workdir / "beat-schedule"),
                "--loglevel",
                "INFO",
            ],
        )
        (message,) = wait_for(lambda: smtp.to("lou@example.com"), 60, "the digest to arrive")
        assert listed(message) == ["Sent by beat"]
        # Beat keeps running the task every second; none of those runs sends it again.
        wait_for(
            lambda: len(re.findall(r"send_digests\[\S+\] succeeded", stack.log("worker"))) >= 4,
            60,
            "beat to run the digest task again",
        )
        assert len(smtp.to("lou@example.com")) == 1


@pytest.mark.parametrize(
    ("url", "link"),
    [
        ("/files/1", f"{SITE}/files/1"),
        ("https://elsewhere.example.org/x", "https://elsewhere.example.org/x"),
        ("", f"{SITE}/"),
        ("javascript:alert(1)", f"{SITE}/"),
        ("//evil.example.com/", f"{SITE}/"),
    ],
)
def test_an_emailed_link_is_absolute_and_never_a_script(url, link):
    assert digest.absolute_link(url, SITE) == link


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_never_email_one_notification_twice(mail, django_user_model, now):
    people = [person(django_user_model, f"race-{i}") for i in range(6)]
    for someone in people:
        add(someone, f"Race {someone.username}", now)
    start = threading.Barrier(2)
    sent = []

    def run() -> None:
        start.wait()
        try:
            sent.append(digest.send_due(now))
        finally:
            connection.close()

    runs = [threading.Thread(target=run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(60)
    assert sum(sent) == len(people)
    for someone in people:
        assert listed(*mail.to(someone.email)) == [f"Race {someone.username}"]


def test_each_person_gets_the_digest_in_their_own_language(mail, django_user_model, now):
    ann, li = person(django_user_model, "lang-ann"), person(django_user_model, "lang-li")
    Preference.objects.create(user=li, language="zh-hans")
    for someone in (ann, li):
        add(someone, "Export ready", now)
        add(someone, "Import ready", now)

    assert digest.send_due(now) == 2

    (english,) = mail.to("lang-ann@example.com")
    assert english["Subject"] == "2 notifications you have not seen"
    assert "You have 2 notifications that you have not seen yet:" in text_of(english)
    (chinese,) = mail.to("lang-li@example.com")
    assert chinese["Subject"] == "您有 2 条未查看的通知"
    assert "您有 2 条尚未查看的通知：" in text_of(chinese)
    assert '<html lang="zh-hans">' in html_of(chinese) and "停止接收这些邮件" in html_of(chinese)
    assert sorted(listed(chinese)) == ["Export ready", "Import ready"]  # titles are data
