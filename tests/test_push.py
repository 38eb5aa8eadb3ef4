"""Web Push sending (notifications/push.py) against a real HTTP stand-in push service
that checks the VAPID signature and decrypts each message as the browser would."""

import pytest
from django.core.management import call_command

from notifications import notify, notify_many, preferences, push
from notifications.celery.tasks import send_push
from notifications.models import Notification, PushDelivery, PushSubscription
from tests.push_service import PushService, Recorder

pytestmark = pytest.mark.django_db


@pytest.fixture
def vapid(settings):
    public, private = push.new_vapid_keys()
    settings.NOTIFICATIONS_VAPID_PUBLIC_KEY = public
    settings.NOTIFICATIONS_VAPID_PRIVATE_KEY = private
    settings.NOTIFICATIONS_VAPID_SUBJECT = "mailto:ops@example.com"
    settings.NOTIFICATIONS_PUSH_SERVICE_HOSTS = ["127.0.0.1"]
    settings.NOTIFICATIONS_PUSH_ALLOW_HTTP = True
    return public


@pytest.fixture
def service(vapid, redis_server):
    service = PushService(vapid)
    yield service
    service.close()
    assert service.refused == []  # every request was one a real push service takes


def notice(user, **fields) -> Notification:
    """A saved notification, without notify()'s enqueue (these tests run the task's logic)."""
    return Notification.objects.create(recipient=user, title=fields.pop("title", "Hi"), **fields)


def device(service: PushService, user, token: str) -> PushSubscription:
    return push.subscribe(user.pk, service.browser(token).subscription, "Test browser")


def test_a_push_reaches_the_device_signed_and_decryptable(service, alice):
    device(service, alice, "a1")
    n = notice(alice, title="Export ready", body="3 files", url="/files/7", level="success")

    assert push.deliver([n.pk]) == []

    assert service.received["a1"] == [
        {
            "id": n.pk,
            "title": "Export ready",
            "body": "3 files",
            "url": "/files/7",
            "level": "success",
        }
    ]
    assert PushDelivery.objects.get(notification=n).sent_at is not None


def test_every_device_of_the_recipient_gets_it_and_nobody_elses(service, alice, bob):
    device(service, alice, "phone")
    device(service, alice, "laptop")
    device(service, bob, "bobs")

    push.deliver([notice(alice).pk])

    assert (service.count("phone"), service.count("laptop"), service.count("bobs")) == (1, 1, 0)


@pytest.mark.parametrize("status", [404, 410])
def test_a_subscription_the_service_no_longer_knows_is_deleted(service, alice, status):
    device(service, alice, "gone")
    service.answer("gone", status)

    assert push.deliver([notice(alice).pk]) == []

    assert not PushSubscription.objects.filter(user=alice).exists()


def test_a_failed_push_is_retried_and_then_delivered_once(service, alice):
    device(service, alice, "flaky")
    device(service, alice, "fine")
    service.answer("flaky", 500)
    n = notice(alice)

    assert push.deliver([n.pk]) == [n.pk]  # "fine" took it; "flaky" failed
    assert (service.count("flaky"), service.count("fine")) == (0, 1)
    assert push.deliver([n.pk]) == []  # the retry sends to "flaky" only

    assert (service.count("flaky"), service.count("fine")) == (1, 1)
    assert service.attempts["fine"] == 1


def test_the_task_retries_a_503_and_delivers_exactly_one_message(service, alice):
    device(service, alice, "busy")
    service.answer("busy", 503, 429)
    n = notice(alice)

    # apply() runs the task's logic here, its retries included (without countdown).
    send_push.apply(args=([n.pk],))

    assert service.attempts["busy"] == 3
    assert service.count("busy") == 1


def test_the_same_notification_is_never_pushed_twice(service, alice):
    device(service, alice, "once")
    n = notice(alice)

    push.deliver([n.pk])
    push.deliver([n.pk])
    send_push.apply(args=([n.pk],))

    assert service.attempts["once"] == 1


def test_a_push_the_service_may_have_taken_is_not_sent_again(service, alice, settings):
    settings.NOTIFICATIONS_PUSH_TIMEOUT = 0.5
    device(service, alice, "slow")
    service.hold("slow")  # it takes the message but answers after the timeout
    n = notice(alice)

    assert push.deliver([n.pk]) == []  # not retried: it may have been delivered
    assert push.deliver([n.pk]) == []
    service.release()

    assert PushDelivery.objects.filter(notification=n).count() == 1
    assert service.attempts["slow"] == 1


def test_the_stand_in_refuses_a_push_signed_with_another_key(vapid, alice, redis_server):
    other_public, _ = push.new_vapid_keys()
    service = PushService(other_public)
    try:
        device(service, alice, "other")
        push.deliver([notice(alice).pk])
        assert service.count("other") == 0
        assert service.refused == ["VAPID: k is not the server's public key"]
    finally:
        service.close()


def test_an_unreachable_service_is_retried(vapid, alice, redis_server):
    service = PushService(vapid)
    device(service, alice, "down")
    service.close()  # nothing listens at the endpoint any more
    n = notice(alice)

    assert push.deliver([n.pk]) == [n.pk]
    assert not PushDelivery.objects.filter(notification=n).exists()


def test_preferences_that_refuse_push_send_nothing(service, alice, monkeypatch):
    asked = []

    def nobody(user_ids, *, level, kind, channel, at=None):
        asked.append((set(user_ids), level, kind, channel))
        return set()

    monkeypatch.setattr(preferences, "recipients", nobody)
    device(service, alice, "muted")

    push.deliver([notice(alice, level="warning", kind="export").pk])

    assert asked == [({alice.pk}, "warning", "export", "push")]
    assert service.attempts["muted"] == 0


def test_a_long_notification_is_shortened_to_fit_one_push(service, alice):
    device(service, alice, "long")
    n = notice(alice, title="T" * 200, body="é" * 4000, url="/x/" + "y" * 1990)

    push.deliver([n.pk])

    (message,) = service.received["long"]
    assert message["title"] == "T" * 200
    assert message["url"] == n.url
    assert message["body"].endswith("…") and message["body"].startswith("ééé")
    assert len(push.payload(n).encode()) <= push.PAYLOAD_MAX_BYTES


def test_the_icon_setting_is_sent(service, alice, settings):
    settings.NOTIFICATIONS_PUSH_ICON = "/static/icon.png"
    device(service, alice, "icon")

    push.deliver([notice(alice).pk])

    assert service.received["icon"][0]["icon"] == "/static/icon.png"


def test_nothing_is_sent_while_push_is_not_configured(service, alice, settings):
    device(service, alice, "off")
    settings.NOTIFICATIONS_VAPID_PRIVATE_KEY = ""

    assert push.deliver([notice(alice).pk]) == []
    assert service.attempts["off"] == 0


def test_generate_vapid_keys_prints_a_pair_that_signs(capsys, alice, redis_server, settings):
    call_command("generate_vapid_keys")
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    public = lines["NOTIFICATIONS_VAPID_PUBLIC_KEY"]
    settings.NOTIFICATIONS_VAPID_PUBLIC_KEY = public
    settings.NOTIFICATIONS_VAPID_PRIVATE_KEY = lines["NOTIFICATIONS_VAPID_PRIVATE_KEY"]
    settings.NOTIFICATIONS_VAPID_SUBJECT = "mailto:ops@example.com"
    settings.NOTIFICATIONS_PUSH_SERVICE_HOSTS = ["127.0.0.1"]
    settings.NOTIFICATIONS_PUSH_ALLOW_HTTP = True
    service = PushService(public)
    try:
        device(service, alice, "cmd")
        push.deliver([notice(alice).pk])
        assert service.count("cmd") == 1
        assert service.refused == []
    finally:
        service.close()


def test_generate_vapid_keys_prints_settings_lines_with_python(capsys):
    call_command("generate_vapid_keys", "--python")
    out = capsys.readouterr().out
    assert out.startswith('NOTIFICATIONS_VAPID_PUBLIC_KEY = "B')
    assert 'NOTIFICATIONS_VAPID_PRIVATE_KEY = "' in out


def test_the_system_check_warns_about_a_push_setup_that_cannot_send(vapid, settings):
    from notifications.checks import push as push_check

    assert push_check(None) == []
    settings.NOTIFICATIONS_VAPID_SUBJECT = "ops@example.com"  # not a mailto: URL

    assert [w.id for w in push_check(None)] == ["notifications.W012"]


@pytest.fixture
def queued(monkeypatch):
    """The push tasks notify() queues (the broker itself is not under test here)."""
    calls = []
    monkeypatch.setattr(send_push, "apply_async", lambda args, **kw: calls.append((args, kw)))
    return calls


def a_device(user) -> PushSubscription:
    """A stored subscription, for tests that stop before anything is posted."""
    return PushSubscription.objects.create(
        user=user, endpoint=f"https://push.example/{user.pk}", p256dh="k", auth="a"
    )


def test_notify_many_queues_one_push_task_for_the_batch_after_commit(
    vapid, alice, bob, queued, django_capture_on_commit_callbacks
):
    a_device(bob)
    with django_capture_on_commit_callbacks(execute=True):
        created = notify_many([alice, bob], "Deploy finished")
        assert queued == []  # nothing before the commit

    assert queued == [(([n.pk for n in created],), {"retry": False})]


def test_notify_queues_nothing_while_push_is_off(alice, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        notify(alice, "No push configured")

    assert queued == []


def test_notify_queues_nothing_for_people_without_a_device(
    vapid, alice, bob, queued, django_capture_on_commit_callbacks
):
    a_device(bob)
    with django_capture_on_commit_callbacks(execute=True):
        notify(alice, "Alice has no device")
        notify_many([alice], "Nor here")
        bobs = notify(bob, "Bob has one")

    assert queued == [(([bobs.pk],), {"retry": False})]


def test_a_broker_that_refuses_the_push_task_does_not_fail_notify(
    vapid, alice, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(send_push, "apply_async", refuse)
    a_device(alice)
    with django_capture_on_commit_callbacks(execute=True):
        notification = notify(alice, "Still saved")

    assert Notification.objects.filter(pk=notification.pk).exists()
    assert "push of 1 notification(s) not queued" in caplog.text


def test_a_device_gone_for_one_notification_is_not_tried_for_the_next(service, alice):
    device(service, alice, "gone-early")
    service.answer("gone-early", 410)

    push.deliver([notice(alice).pk, notice(alice).pk])

    assert service.attempts["gone-early"] == 1


@pytest.fixture
def internal():
    """A server inside the network that no push may reach."""
    recorder = Recorder()
    yield recorder
    recorder.close()


@pytest.mark.parametrize("status", [307, 302, 301, 308, 303])
def test_a_redirect_is_a_failed_delivery_never_followed(service, alice, internal, status, caplog):
    device(service, alice, "r1")
    service.redirect("r1", status, internal.url + "/internal-admin")
    n = notice(alice, title="Secret")

    assert push.deliver([n.pk]) == []  # not retried either

    assert internal.requests == []
    assert service.attempts["r1"] == 1
    assert PushDelivery.objects.get(notification=n).sent_at is None
    assert f"answered {status}; redirects are not followed" in caplog.text


def test_a_device_whose_host_is_no_longer_allowed_is_never_posted_to(service, alice, settings):
    device(service, alice, "h1")
    settings.NOTIFICATIONS_PUSH_SERVICE_HOSTS = ["fcm.googleapis.com"]

    push.deliver([notice(alice).pk])

    assert service.attempts["h1"] == 0


def test_the_sender_ignores_proxies_from_the_environment(service, alice, internal, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", internal.url)
    monkeypatch.setenv("http_proxy", internal.url)
    monkeypatch.setenv("NO_PROXY", "")
    push._session.cache_clear()
    device(service, alice, "p1")

    assert push.deliver([notice(alice).pk]) == []

    assert internal.requests == []
    assert service.count("p1") == 1
