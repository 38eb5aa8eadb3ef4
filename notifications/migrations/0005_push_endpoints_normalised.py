"""Endpoints stored before normalisation get their one spelling; where two rows
turn out to be one device, the newest registration is kept."""

from django.db import migrations


def normalise(apps, schema_editor):
    from notifications.push import normal_endpoint

    PushSubscription = apps.get_model("notifications", "PushSubscription")
    kept: dict[str, int] = {}
    for row in PushSubscription.objects.order_by("-id"):
        try:
            endpoint = normal_endpoint(row.endpoint)
        except ValueError:  # unusable: check_endpoint() refuses to send to it
            continue
        if endpoint in kept:
            row.delete()
            continue
        kept[endpoint] = row.pk
        if endpoint != row.endpoint:
            row.endpoint = endpoint
            row.save(update_fields=["endpoint"])


class Migration(migrations.Migration):
    dependencies = [("notifications", "0004_push_subscriptions")]

    operations = [migrations.RunPython(normalise, migrations.RunPython.noop)]
