"""Presence: whether a user has a socket open now, read from the socket counts in Redis."""

import json
import time

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from notifications import presence, quota

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_user_is_online_while_a_socket_is_open_and_not_after(
    sockets, alice, bob, redis_server
):
    communicator, connected, _ = await sockets(alice)
    assert connected

    assert await sync_to_async(presence.online)([alice.pk, bob.pk]) == {alice.pk}

    await communicator.disconnect()
    assert await sync_to_async(presence.online)([alice.pk, bob.pk]) == set()


def test_a_socket_whose_process_stopped_refreshing_it_is_not_presence(alice, redis_client):
    # A Daphne that died leaves its entry, scored by the time it lapses.
    redis_client.zadd(quota.sockets_key(alice.pk), {"dead-process!channel": time.time() - 1})
    assert presence.online([alice.pk]) == set()

    redis_client.zadd(quota.sockets_key(alice.pk), {"live!channel": time.time() + quota.TTL})
    assert presence.online([alice.pk]) == {alice.pk}


def test_nobody_asked_is_nobody_online(redis_server):
    assert presence.online([]) == set()


async def test_the_api_tells_the_signed_in_user_their_own_state(sockets, alice, bob, redis_server):
    alices, bobs = Client(), Client()
    await sync_to_async(alices.force_login)(alice)
    await sync_to_async(bobs.force_login)(bob)
    communicator, connected, _ = await sockets(alice)
    assert connected

    alice_says = await sync_to_async(alices.get)("/api/notifications/presence/")
    bob_says = await sync_to_async(bobs.get)("/api/notifications/presence/")

    assert json.loads(alice_says.content) == {"online": True}
    assert json.loads(bob_says.content) == {"online": False}
    await communicator.disconnect()
    again = await sync_to_async(alices.get)("/api/notifications/presence/")
    assert json.loads(again.content) == {"online": False}


def test_the_api_answers_401_json_to_anonymous_callers(client, redis_server):
    response = client.get("/api/notifications/presence/")
    assert response.status_code == 401
    assert response.json() == {"error": "login required"}
