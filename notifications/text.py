"""The words the browser client shows, translated on the server.

The scripts hold English source strings and look each one up with
`notificationsText()` (static/notifications/text.js) in a JSON catalogue that
{% notifications_widget %} renders in the active language. Listing the strings
here puts them in the app's gettext catalogues (`makemessages` finds them) with
the Python and template strings, so one `locale/` translates everything;
`tests/test_text.py` checks that every string a script looks up is listed.
"""

from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_noop as _

CLIENT_STRINGS = (
    _("(+{count} more)"),
    _("(always)"),
    _("A browser"),
    _("And for these kinds of notice"),
    _("Besides the inbox, tell me by"),
    _("Cancel"),
    _("Connecting…"),
    _("Could not remove it: {error}"),
    _("Could not turn on notifications here: {error}"),
    _("Daily"),
    _("Desktop alerts are blocked in this browser"),
    _("Devices unavailable: {error}"),
    _("Dismiss"),
    _("Email digest of what I have not seen"),
    _("Email digest"),
    _("Error"),
    _("From"),
    _("Hold push back between"),
    _("Hourly"),
    _("Info"),
    _("Kind"),
    _("Language of my emails"),
    _("Level"),
    _("Live"),
    _("Loading…"),
    _("Mark as read"),
    _("Notifications are blocked for this site in the browser's settings."),
    _("Notifications"),
    _("Notifications, {count} unread"),
    _("Off"),
    _("Offline"),
    _("Please sign in again."),
    _("Push"),
    _("Quiet hours for push"),
    _("Reconnecting…"),
    _("Remove"),
    _("Save"),
    _("Saved."),
    _("Saving failed ({status})."),
    _("Saving…"),
    _("Still working…"),
    _("Success"),
    _("The site's language"),
    _("This browser cannot receive push notifications."),
    _("This browser: {device}"),
    _("This device will be notified when no tab of this site is open."),
    _("Time zone"),
    _("Turn off desktop alerts"),
    _("Turn on desktop alerts"),
    _("Until"),
    _("Waiting for a worker…"),
    _("Warning"),
    _("Working…"),
    _("You seem to be offline; try again."),
    _("just now"),
    _("the server answered {status}"),
    _("{channel} for {what}"),
    _("{device} · since {date}"),
    _("{kind} notices"),
)


def client_catalogue() -> dict[str, str]:
    """Each client string that the active language translates, by its source."""
    return {source: words for source in CLIENT_STRINGS if (words := gettext(source)) != source}


def client_language() -> str:
    """The active language as a BCP 47 tag for the browser's Intl formatters."""
    return get_language() or "en"
