"""The Web Push device API: register, list and remove the caller's own browsers;
strict input, CSRF, 401 for anonymous callers, 404 for others' devices."""

import json

import pytest
from django.test import Client

from notifications import push
from notifications.models import PushSubscription
from tests.push_service import Browser

pytestmark = pytest.mark.django_db

URL = "/api/notifications/push/subscriptions/"
FCM = "https://fcm.googleapis.com/fcm/send/"


@pytest.fixture(autouse=True)
def vapid(settings):
    settings.NOTIFICATIONS_VAPID_PUBLIC_KEY, settings.NOTIFICATIONS_VAPID_PRIVATE_KEY = (
        push.new_vapid_keys()
    )


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, data, **extra):
    body = data if isinstance(data, (str, bytes)) else json.dumps(data)
    return client.post(URL, body, content_type="application/json", **extra)


def subscription(token: str = "abc") -> dict:
    return Browser(FCM + token).subscription


def test_a_browser_registers_and_lists_its_subscription(alice):
    client = signed_in(alice)
    response = post(client, subscription(), HTTP_USER_AGENT="Firefox/140")

    assert response.status_code == 201
    (device,) = client.get(URL).json()["devices"]
    assert device["id"] == response.json()["id"]
    assert device["endpoint"] == FCM + "abc"
    assert device["user_agent"] == "Firefox/140"


def test_registering_the_same_browser_again_keeps_one_row(alice):
    client = signed_in(alice)
    first = post(client, subscription()).json()["id"]
    again = post(client, subscription()).json()["id"]  # new keys, same endpoint

    assert first == again
    assert PushSubscription.objects.count() == 1


def test_a_browser_registered_by_someone_else_moves_to_who_is_signed_in_now(alice, bob):
    shared = subscription("shared")  # the same browser profile: the same keys
    post(signed_in(bob), shared)

    assert post(signed_in(alice), shared).status_code == 201
    assert PushSubscription.objects.get().user == alice
    assert signed_in(bob).get(URL).json()["devices"] == []


def test_knowing_another_accounts_endpoint_takes_nothing_over(alice, bob):
    bobs = post(signed_in(bob), subscription("bobs-phone")).json()["id"]
    mallory = subscription("bobs-phone")  # the endpoint, with keys of her own

    response = post(signed_in(alice), mallory)
    spelled_otherwise = post(
        signed_in(alice), {**mallory, "endpoint": "HTTPS://FCM.googleapis.COM/fcm/send/bobs-phone"}
    )

    assert response.status_code == 409
    assert response.json()["error"] == "this endpoint is registered to another account"
    assert spelled_otherwise.status_code == 409
    device = PushSubscription.objects.get()
    assert (device.pk, device.user) == (bobs, bob)


SPELLINGS = [
    "HTTPS://fcm.googleapis.com/fcm/send/dev",
    "https://FCM.GoogleAPIs.com/fcm/send/dev",
    " https://fcm.googleapis.com/fcm/send/dev",
    "https://fcm.googleapis.com/fcm/send/dev\n",
    "\thttps://fcm.googleapis.com:443/fcm/send/dev ",
]


def test_one_device_is_one_row_however_its_endpoint_is_spelled(alice):
    client = signed_in(alice)
    ids = {post(client, {**subscription(), "endpoint": e}).json()["id"] for e in SPELLINGS}

    assert len(ids) == 1
    assert PushSubscription.objects.get().endpoint == "https://fcm.googleapis.com/fcm/send/dev"


@pytest.mark.parametrize("endpoint", [FCM + "a\nb", FCM + "a b", FCM + "a\x00b", FCM + "a\x7fb"])
def test_an_endpoint_with_control_characters_inside_is_refused(alice, endpoint):
    response = post(signed_in(alice), {**subscription(), "endpoint": endpoint})

    assert response.status_code == 400
    assert not PushSubscription.objects.exists()


def test_nobody_lists_or_removes_another_users_devices(alice, bob):
    bobs_id = post(signed_in(bob), subscription()).json()["id"]
    alices = signed_in(alice)

    assert alices.get(URL).json()["devices"] == []
    assert alices.delete(f"{URL}{bobs_id}/").status_code == 404
    assert PushSubscription.objects.filter(pk=bobs_id).exists()


def test_the_owner_removes_a_device(alice):
    client = signed_in(alice)
    device_id = post(client, subscription()).json()["id"]

    assert client.delete(f"{URL}{device_id}/").json() == {"id": device_id, "deleted": True}
    assert client.delete(f"{URL}{device_id}/").status_code == 404
    assert not PushSubscription.objects.exists()


def test_anonymous_callers_get_401_json(client):
    assert client.get(URL).status_code == 401
    assert post(client, subscription()).status_code == 401
    assert client.delete(f"{URL}1/").status_code == 401


def test_writes_need_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    device_id = push.subscribe(alice.pk, subscription()).pk

    assert post(client, subscription("other")).status_code == 403
    assert client.delete(f"{URL}{device_id}/").status_code == 403
    assert PushSubscription.objects.count() == 1


def with_keys(**keys) -> dict:
    data = subscription()
    data["keys"].update(keys)
    return data


_key, _auth = subscription()["keys"]["p256dh"], subscription()["keys"]["auth"]
# Keys with the standard alphabet's + and /, so the case above tests something.
while "-" not in _key and "_" not in _key:
    _key = subscription()["keys"]["p256dh"]

BAD = {
    "not JSON": "{",
    "a list": [1],
    "no keys": {"endpoint": FCM + "x"},
    "http endpoint": {**subscription(), "endpoint": "http://fcm.googleapis.com/fcm/send/x"},
    "another host": {**subscription(), "endpoint": "https://169.254.169.254/latest/meta-data"},
    "a look-alike host": {**subscription(), "endpoint": "https://evilfcm.googleapis.com.evil/x"},
    "credentials in the URL": {**subscription(), "endpoint": "https://u:p@fcm.googleapis.com/x"},
    "a bad port": {**subscription(), "endpoint": "https://fcm.googleapis.com:99999/x"},
    "an endpoint too long": {**subscription(), "endpoint": FCM + "x" * 1000},
    "a short p256dh": with_keys(p256dh="BAAA"),
    "a p256dh off the curve": with_keys(p256dh="BA" + "A" * 85),
    "a p256dh not base64": with_keys(p256dh="!" * 87),
    "a p256dh with $$ inside": with_keys(p256dh=_key[:40] + "$$" + _key[40:]),
    "a p256dh in standard base64": with_keys(p256dh=_key.replace("-", "+").replace("_", "/")),
    "an auth with !!!! inside": with_keys(auth=_auth[:10] + "!!!!" + _auth[10:]),
    "an auth with @@@@ inside": with_keys(auth="@@@@" + _auth),
    "an auth of whitespace around": with_keys(auth=" " + _auth + " "),
    "an auth of 8 bytes": with_keys(auth="AAAAAAAAAAA"),
    "a number for auth": with_keys(auth=5),
    "a huge body": {**subscription(), "pad": "x" * 5000},
}


@pytest.mark.parametrize("data", BAD.values(), ids=BAD.keys())
def test_bad_subscriptions_are_refused_with_400_and_change_nothing(alice, data):
    response = post(signed_in(alice), data)

    assert response.status_code == 400
    assert response.json()["error"]
    assert not PushSubscription.objects.exists()


def test_a_user_has_at_most_the_configured_number_of_devices(alice, settings):
    settings.NOTIFICATIONS_PUSH_MAX_SUBSCRIPTIONS = 2
    client = signed_in(alice)
    assert post(client, subscription("1")).status_code == 201
    assert post(client, subscription("2")).status_code == 201

    assert post(client, subscription("3")).status_code == 400
    assert post(client, subscription("2")).status_code == 201  # a refresh still works


def test_without_vapid_keys_nothing_is_registered(alice, settings):
    settings.NOTIFICATIONS_VAPID_PRIVATE_KEY = ""
    client = signed_in(alice)

    assert post(client, subscription()).status_code == 404
    assert client.get(URL).json() == {"enabled": False, "devices": []}


def test_the_service_worker_may_control_the_whole_site(client):
    response = client.get("/api/notifications/push/sw.js")

    assert response.status_code == 200
    assert response["Service-Worker-Allowed"] == "/"
    assert response["Content-Type"].startswith("text/javascript")
    assert b'addEventListener("push"' in response.content
