"""Preferences: who push and email reach (recipients()), and the JSON API that sets them."""

import json
from datetime import UTC, datetime, time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from notifications import notify_many, preferences
from notifications.models import Notification, Preference

pytestmark = pytest.mark.django_db

URL = "/api/notifications/preferences/"


def signed_in(user, **options) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


def put(client: Client, payload) -> "Client.response":
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return client.put(URL, body, content_type="application/json")


LANGUAGES = [{"code": "en", "name": "English"}, {"code": "zh-hans", "name": "简体中文"}]


def valid(**changes) -> dict:
    payload = {
        "levels": {
            "info": ["email"],
            "success": [],
            "warning": ["push", "email"],
            "error": ["push", "email"],
        },
        "kinds": {"export": ["push"]},
        "digest": "daily",
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "time_zone": "Europe/Berlin",
    }
    payload.update(changes)
    return payload


def choose(user, **fields) -> None:
    Preference.objects.update_or_create(user=user, defaults=fields)


# --- recipients() -----------------------------------------------------------

NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_people_without_preferences_get_every_channel(alice, bob):
    for channel in ("push", "email"):
        assert preferences.recipients(
            [alice.pk, bob.pk], level="info", kind="", channel=channel, at=NOON
        ) == {alice.pk, bob.pk}


def test_a_channel_applies_only_when_both_the_level_and_the_kind_allow_it(alice, bob):
    choose(alice, channels={"levels": {"info": ["email"]}, "kinds": {"export": ["push"]}})

    def reached(level, kind, channel):
        return preferences.recipients(
            [alice.pk, bob.pk], level=level, kind=kind, channel=channel, at=NOON
        )

    assert reached("info", "", "push") == {bob.pk}  # the level says no
    assert reached("info", "", "email") == {alice.pk, bob.pk}
    assert reached("info", "export", "email") == {bob.pk}  # the kind says no
    assert reached("warning", "export", "push") == {alice.pk, bob.pk}  # both allow it
    assert reached("warning", "backup", "email") == {alice.pk, bob.pk}  # kind not named


def test_quiet_hours_across_midnight_hold_back_push_on_the_persons_own_clock(alice):
    # 22:00-07:00 in Tokyo (UTC+9): 13:00-22:00 UTC is Tokyo's 22:00-07:00.
    choose(alice, quiet_start=time(22), quiet_end=time(7), time_zone="Asia/Tokyo")

    def push_at(hour, minute=0):
        at = datetime(2026, 6, 1, hour, minute, tzinfo=UTC)
        return preferences.recipients([alice.pk], level="info", kind="", channel="push", at=at)

    assert push_at(12, 59) == {alice.pk}  # 21:59 in Tokyo
    assert push_at(13, 0) == set()  # 22:00
    assert push_at(17) == set()  # 02:00, past midnight
    assert push_at(21, 59) == set()  # 06:59
    assert push_at(22, 0) == {alice.pk}  # 07:00
    # Quiet hours are for push only: the digest still takes it.
    at = datetime(2026, 6, 1, 17, tzinfo=UTC)
    assert preferences.recipients([alice.pk], level="info", kind="", channel="email", at=at) == {
        alice.pk
    }


def test_quiet_hours_within_a_day_follow_summer_time(alice):
    choose(alice, quiet_start=time(9), quiet_end=time(17), time_zone="Europe/Berlin")
    summer = datetime(2026, 7, 1, 7, 30, tzinfo=UTC)  # 09:30 CEST
    winter = datetime(2026, 1, 5, 7, 30, tzinfo=UTC)  # 08:30 CET
    assert (
        preferences.recipients([alice.pk], level="info", kind="", channel="push", at=summer)
        == set()
    )
    assert preferences.recipients([alice.pk], level="info", kind="", channel="push", at=winter) == {
        alice.pk
    }


def test_a_critical_level_cannot_be_muted_but_the_unsubscribe_is_honoured(alice, settings):
    settings.NOTIFICATIONS_CRITICAL_LEVELS = ("error",)
    choose(
        alice,
        channels={"levels": {"error": []}, "kinds": {"export": []}},
        quiet_start=time(0),
        quiet_end=time(23, 59),
    )
    for channel in ("push", "email"):
        assert preferences.recipients(
            [alice.pk], level="error", kind="export", channel=channel, at=NOON
        ) == {alice.pk}
    assert (
        preferences.recipients([alice.pk], level="warning", kind="", channel="push", at=NOON)
        == set()
    )
    choose(alice, digest="off")
    assert (
        preferences.recipients([alice.pk], level="error", kind="", channel="email", at=NOON)
        == set()
    )


def test_digest_off_by_default_setting_stops_email_for_people_without_preferences(alice, settings):
    settings.NOTIFICATIONS_DIGEST_DEFAULT = "off"
    assert preferences.recipients([alice.pk], level="info", kind="", channel="email") == set()
    assert preferences.recipients([alice.pk], level="info", kind="", channel="push") == {alice.pk}


def test_an_unknown_channel_is_refused(alice):
    with pytest.raises(ValueError, match="unknown channel 'sms'"):
        preferences.recipients([alice.pk], level="info", kind="", channel="sms")


def test_five_thousand_users_are_one_query(django_user_model):
    django_user_model.objects.bulk_create(
        django_user_model(username=f"prefs-many-{i}") for i in range(5_000)
    )
    ids = list(
        django_user_model.objects.filter(username__startswith="prefs-many-").values_list(
            "pk", flat=True
        )
    )
    Preference.objects.create(user_id=ids[0], channels={"levels": {"info": []}})
    with CaptureQueriesContext(connection) as queries:
        reached = preferences.recipients(ids, level="info", kind="", channel="push")
    assert len(queries) == 1
    assert reached == set(ids[1:])


def test_notify_many_never_reads_preferences(alice, bob, monkeypatch):
    """The in-app path always applies: it costs no preference lookup at all."""

    def refuse(*args, **kwargs):
        raise AssertionError("the in-app path read preferences")

    monkeypatch.setattr(preferences, "choices_of", refuse)
    choose(alice, channels={"levels": {"info": []}}, digest="off")
    created = notify_many([alice, bob], "Kept in the inbox")
    assert {n.recipient_id for n in created} == {alice.pk, bob.pk}


# --- The command's --kind ------------------------------------------------------


def test_the_notify_command_takes_a_kind(alice):
    call_command("notify", "Export done", "--user", "alice", "--kind", "export")
    assert Notification.objects.get(recipient=alice).kind == "export"


def test_the_notify_command_refuses_a_bad_kind(alice):
    with pytest.raises(CommandError, match="kind 'Bad Kind'"):
        call_command("notify", "Export done", "--user", "alice", "--kind", "Bad Kind")
    assert not Notification.objects.exists()


# --- The API --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "put"])
def test_anonymous_callers_get_401_json(client, method):
    response = getattr(client, method)(URL)
    assert response.status_code == 401
    assert response.json() == {"error": "login required"}


def test_get_shows_the_defaults_with_every_level_spelled_out(alice, settings):
    settings.NOTIFICATIONS_CRITICAL_LEVELS = ("error",)
    settings.NOTIFICATIONS_DIGEST_DEFAULT = "hourly"
    assert signed_in(alice).get(URL).json() == {
        "levels": {
            "info": ["push", "email"],
            "success": ["push", "email"],
            "warning": ["push", "email"],
            "error": ["push", "email"],
        },
        "kinds": {},
        "critical": ["error"],
        "digest": "hourly",
        "quiet_hours": None,
        "time_zone": "UTC",
        "language": "",
        "languages": LANGUAGES,
    }


def test_put_then_get_round_trips_and_leaves_other_users_alone(alice, bob):
    client = signed_in(alice)
    response = put(client, valid())
    assert response.status_code == 200
    expected = {**valid(), "critical": ["error"], "language": "", "languages": LANGUAGES}
    assert response.json() == expected
    assert client.get(URL).json() == expected
    assert signed_in(bob).get(URL).json()["digest"] == "hourly"
    assert not Preference.objects.filter(user=bob).exists()
    assert preferences.recipients(
        [alice.pk, bob.pk], level="success", kind="", channel="email"
    ) == {bob.pk}


def test_put_needs_the_csrf_token(alice):
    client = signed_in(alice, enforce_csrf_checks=True)
    response = put(client, valid())
    assert response.status_code == 403
    assert not Preference.objects.exists()
    client.get("/")  # any page hands out the cookie
    token = client.cookies["csrftoken"].value
    response = client.put(
        URL, json.dumps(valid()), content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("not json", "the body must be JSON"),
        ("[" * 100_000, "the body must be JSON"),
        ([], "preferences must be a JSON object"),
        (valid(extra=1), "unknown field(s): extra"),
        ({"digest": "daily"}, "missing field(s): levels, kinds, quiet_hours, time_zone"),
        (valid(levels={"debug": []}), "unknown level 'debug'"),
        (valid(levels={"info": ["sms"]}), "unknown channel 'sms'"),
        (valid(levels={"info": "push"}), "levels['info'] must be a list of channels"),
        (valid(levels={"error": ["email"]}), "level 'error' is critical and cannot be muted"),
        (valid(kinds={"Export!": []}), "kind 'Export!' must be"),
        (valid(kinds={"x" * 65: []}), "must be 1-64 characters"),
        (valid(kinds={f"k{i}": [] for i in range(51)}), "at most 50 kinds"),
        (valid(kinds=[]), "kinds must be an object"),
        (valid(digest="weekly"), "digest must be one of off, hourly, daily"),
        (valid(quiet_hours={"start": "25:00", "end": "07:00"}), "quiet_hours start must be"),
        (valid(quiet_hours={"start": "7:00", "end": "08:00"}), "quiet_hours start must be"),
        (valid(quiet_hours={"start": "07:00"}), "quiet_hours must be null or"),
        (valid(quiet_hours={"start": "07:00", "end": "07:00"}), "must differ"),
        (valid(time_zone="Mars/Olympus"), "time_zone must be an IANA time zone name"),
        (valid(time_zone="../../etc/passwd"), "time_zone must be an IANA time zone name"),
        (valid(time_zone=5), "time_zone must be an IANA time zone name"),
        (valid(time_zone="localtime"), "time_zone must be an IANA time zone name"),
        (valid(time_zone="Factory"), "time_zone must be an IANA time zone name"),
        (valid(time_zone="posixrules"), "time_zone must be an IANA time zone name"),
        (valid(time_zone="posix/Europe/Berlin"), "time_zone must be an IANA time zone name"),
        (valid(time_zone="right/UTC"), "time_zone must be an IANA time zone name"),
    ],
)
def test_bad_input_answers_400_with_the_reason_and_changes_nothing(alice, payload, message):
    client = signed_in(alice)
    assert put(client, valid(digest="off")).status_code == 200
    before = client.get(URL).json()
    response = put(client, payload)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert client.get(URL).json() == before


HUGE = "x" * 200_000
HOSTILE = [
    valid(levels={HUGE: []}),
    valid(levels={"info": [HUGE]}),
    valid(kinds={HUGE: []}),
    valid(kinds={"export": [HUGE]}),
    valid(digest=HUGE),
    valid(quiet_hours={"start": HUGE, "end": "07:00"}),
    valid(time_zone=HUGE),
]


@pytest.mark.parametrize("payload", HOSTILE, ids=range(len(HOSTILE)))
def test_a_huge_value_is_never_echoed_whole(alice, payload):
    response = put(signed_in(alice), payload)

    assert response.status_code == 400
    assert len(response.content) < 1_000


def test_a_zone_the_worker_cannot_read_is_utc_for_that_person_alone(alice, bob, caplog):
    quiet = {"quiet_start": time(11, 0), "quiet_end": time(13, 0)}
    choose(alice, time_zone="Mars/Olympus", **quiet)  # saved before the rule, or lost since
    choose(bob, time_zone="Asia/Tokyo")

    reached = preferences.recipients(
        [alice.pk, bob.pk], level="info", kind="", channel="push", at=NOON
    )

    assert reached == {bob.pk}  # alice: quiet at noon UTC; bob: reached as before
    assert "time zone 'Mars/Olympus' cannot be read" in caplog.text


def test_critical_is_read_only_and_ignored_in_a_put(alice):
    response = put(signed_in(alice), valid(critical=[]))
    assert response.status_code == 200
    assert response.json()["critical"] == ["error"]


def test_other_methods_answer_405(alice):
    assert signed_in(alice).post(URL, {}).status_code == 405
    assert signed_in(alice).delete(URL).status_code == 405


# --- The operator's side ---------------------------------------------------------


def test_the_checks_refuse_an_unknown_digest_default_critical_level_or_kind(settings):
    from notifications.checks import preference_settings

    assert preference_settings(None) == []
    settings.NOTIFICATIONS_DIGEST_DEFAULT = "weekly"
    settings.NOTIFICATIONS_CRITICAL_LEVELS = ("error", "fatal")
    settings.NOTIFICATIONS_KINDS = ("export", "Big Exports")
    assert [e.id for e in preference_settings(None)] == [
        "notifications.E001",
        "notifications.E002",
        "notifications.E003",
    ]


def test_the_admin_lists_and_edits_preferences(admin_client, alice):
    Preference.objects.create(user=alice, digest="daily", time_zone="Europe/Berlin")
    listing = admin_client.get("/admin/notifications/preference/")
    assert listing.status_code == 200
    assert b"Europe/Berlin" in listing.content
    page = admin_client.get(f"/admin/notifications/preference/{alice.pk}/change/")
    assert page.status_code == 200
    assert b"quiet_start" in page.content


def test_the_operators_kinds_are_offered_and_a_kind_with_every_channel_is_not_kept(alice, settings):
    settings.NOTIFICATIONS_KINDS = ("export", "import")
    client = signed_in(alice)
    shown = client.get(URL).json()["kinds"]
    assert shown == {"export": ["push", "email"], "import": ["push", "email"]}
    response = put(client, valid(kinds={**shown, "import": ["push"], "backup": ["email", "push"]}))
    assert response.json()["kinds"] == {"export": ["push", "email"], "import": ["push"]}
    assert Preference.objects.get(user=alice).channels["kinds"] == {"import": ["push"]}


def test_the_admin_refuses_what_the_api_refuses(admin_client, alice):
    Preference.objects.create(user=alice, time_zone="Europe/Berlin")
    form = {
        "user": alice.pk,
        "channels": json.dumps({"levels": {"info": ["sms"]}}),
        "digest": "daily",
        "quiet_start": "22:00",
        "quiet_end": "",
        "time_zone": "Mars/Olympus",
    }
    page = admin_client.post(f"/admin/notifications/preference/{alice.pk}/change/", form)
    assert page.status_code == 200  # the form again, with the reason
    assert b"unknown channel" in page.content
    for bad, reason in [
        ({"channels": "[]"}, b"channels must be"),
        ({"channels": "{}", "quiet_end": "07:00"}, b"time_zone must be"),
        ({"channels": "{}", "time_zone": "Asia/Tokyo"}, b"quiet_hours"),
    ]:
        page = admin_client.post(
            f"/admin/notifications/preference/{alice.pk}/change/", {**form, **bad}
        )
        assert reason in page.content
    assert Preference.objects.get(user=alice).time_zone == "Europe/Berlin"
    good = {**form, "channels": "{}", "quiet_end": "07:00", "time_zone": "Asia/Tokyo"}
    page = admin_client.post(f"/admin/notifications/preference/{alice.pk}/change/", good)
    assert page.status_code == 302
    assert Preference.objects.get(user=alice).time_zone == "Asia/Tokyo"


def test_the_language_is_chosen_kept_when_left_out_and_checked(alice):
    client = signed_in(alice)
    assert put(client, valid(language="zh-hans")).json()["language"] == "zh-hans"
    assert put(client, valid()).json()["language"] == "zh-hans"  # an older client's PUT
    refused = put(client, valid(language="xx-evil"))
    assert refused.status_code == 400
    assert "language must be" in refused.json()["error"]
    assert put(client, valid(language="")).json()["language"] == ""
    assert preferences.choices_of([alice.pk])[alice.pk].language_code == "en-us"
