"""A person's digest language (blank: the site's LANGUAGE_CODE)."""


from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0005_push_endpoints_normalised'),
    ]

    operations = [
        migrations.AddField(
            model_name='preference',
            name='language',
            field=models.CharField(blank=True, default='', max_length=16),
        ),
    ]
