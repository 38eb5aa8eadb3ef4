"""Every word the client shows goes through the catalogues, and the Simplified
Chinese one translates all of them; the widget, the digest and the unsubscribe
page render in the active language."""

import gettext
import json
import re
from pathlib import Path

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import translation

from notifications import digest, text

APP = Path(text.__file__).parent
SCRIPTS = sorted((APP / "static" / "notifications").glob("*.js"))
# A lookup in a script: t("…"), with the source string in double quotes.
LOOKUP = re.compile(r'(?<![\w.])t\("((?:[^"\\]|\\.)*)"')


def looked_up() -> set[str]:
    return {json.loads(f'"{m}"') for s in SCRIPTS for m in LOOKUP.findall(s.read_text())}


def po_entries(path: Path) -> dict[str, str]:
    """msgid → msgstr (the first form, for plurals) of a .po file."""
    entries = {}
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        fields: dict[str, str] = {}
        name = None
        for line in block.splitlines():
            if line.startswith("#"):
                continue
            if line.startswith('"'):
                fields[name] += json.loads(line)
            else:
                name, _, value = line.partition(" ")
                fields[name] = json.loads(value)
        if fields.get("msgid"):
            entries[fields["msgid"]] = fields.get("msgstr", fields.get("msgstr[0]", ""))
    return entries


def test_every_string_a_script_looks_up_is_in_the_catalogue_list():
    assert looked_up(), "no lookups found: the pattern no longer matches the scripts"
    assert looked_up() - set(text.CLIENT_STRINGS) == set()
    assert set(text.CLIENT_STRINGS) - looked_up() == set(), "listed but used by no script"


@pytest.mark.parametrize("language", ["en", "zh_Hans"])
def test_the_compiled_catalogue_matches_its_source(language):
    messages = APP / "locale" / language / "LC_MESSAGES"
    with open(messages / "django.mo", "rb") as compiled:
        catalogue = gettext.GNUTranslations(compiled)
    for msgid, msgstr in po_entries(messages / "django.po").items():
        assert catalogue.gettext(msgid) == (msgstr or msgid), f"{msgid!r}: run make messages"


def test_the_chinese_catalogue_translates_every_string_of_the_app():
    source = po_entries(APP / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po")
    assert [msgid for msgid, msgstr in source.items() if not msgstr] == []
    assert set(text.CLIENT_STRINGS) <= set(source)
    for msgid, msgstr in source.items():  # the {placeholders} survive translation
        assert sorted(re.findall(r"\{\w+\}", msgstr)) == sorted(re.findall(r"\{\w+\}", msgid))


def render_widget(user) -> str:
    request = RequestFactory().get("/")
    request.user = user
    template = Template("{% load notifications_tags %}{% notifications_widget %}")
    return template.render(Context({"request": request}))


@pytest.mark.django_db
def test_the_widget_renders_in_the_active_language(alice):
    with translation.override("zh-hans"):
        page = render_widget(alice)
    assert 'data-language="zh-hans"' in page
    assert "全部标为已读" in page and "Mark all as read" not in page
    catalogue = json.loads(re.search(r'id="nw-text"[^>]*>(.*?)</script>', page).group(1))
    assert catalogue["Mark as read"] == "标为已读"
    assert set(catalogue) == set(text.CLIENT_STRINGS)
    english = render_widget(alice)
    assert "Mark all as read" in english
    assert re.search(r'id="nw-text"[^>]*>\{\}</script>', english), "English needs no catalogue"


@pytest.mark.django_db
def test_the_digest_is_written_in_the_active_language(alice):
    alice.email = "alice@example.com"
    rows = [alice.notifications.create(title=f"Report {n}") for n in range(2)]
    with translation.override("zh-hans"):
        email = digest.message(alice, rows, "https://example.com")
    assert email.subject == "您有 2 条未查看的通知"
    assert "您有 2 条尚未查看的通知" in email.body
    html, _ = email.alternatives[0]
    assert '<html lang="zh-hans">' in html and "停止接收这些邮件" in html
    assert digest.message(alice, rows, "https://example.com").subject == (
        "2 notifications you have not seen"
    )


@pytest.mark.django_db
def test_a_tasks_notice_is_written_in_its_recipients_language(alice, bob):
    from types import SimpleNamespace

    from notifications.celery import signals
    from notifications.limits import TITLE_MAX
    from notifications.models import Preference

    Preference.objects.create(user=bob, language="zh-hans")
    task = SimpleNamespace(notify_title="Export", name="tasks.export")
    for user, finished, failed in (
        (alice, "Export finished", "Export failed"),
        (bob, "Export 已完成", "Export 失败"),
    ):
        with signals.in_language_of(user.pk):
            assert signals.outcome_fields(task, "t-1", "SUCCESS", None)["title"] == finished
            assert signals.outcome_fields(task, "t-1", "FAILURE", None)["title"] == failed
    long = SimpleNamespace(notify_title="x" * 500, name="tasks.long")
    with signals.in_language_of(bob.pk):
        title = signals.outcome_fields(long, "t-2", "SUCCESS", None)["title"]
    assert len(title) <= TITLE_MAX and title.endswith(" 已完成")


@pytest.mark.django_db
def test_the_apis_errors_follow_the_active_language(client, alice):
    from django.urls import reverse

    url = reverse("notifications:list")
    with translation.override("zh-hans"):
        assert client.get(url).json() == {"error": "需要登录"}
        client.force_login(alice)
        assert "必须是非负整数" in client.get(url, {"after": "x"}).json()["error"]
    assert "must be a non-negative integer" in client.get(url, {"after": "x"}).json()["error"]


def test_the_preferences_and_push_checks_answer_in_the_active_language(client, alice):
    from django.urls import reverse

    from notifications import push

    client.force_login(alice)
    url = reverse("notifications:preferences")
    with translation.override("zh-hans"):
        answer = client.put(url, "[]", content_type="application/json").json()
        assert answer == {"error": "偏好设置必须是 JSON 对象"}
        answer = client.put(url, '{"surprise": 1}', content_type="application/json").json()
        assert answer["error"].startswith("未知字段：")
        with pytest.raises(ValueError, match="不在已知的推送服务上"):
            push.check_endpoint("https://push.example.org/x")
    answer = client.put(url, "[]", content_type="application/json").json()
    assert answer == {"error": "preferences must be a JSON object"}
