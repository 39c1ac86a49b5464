"""Branch emr (issue 9): what a person typed and has not saved, kept as they type (nothing typed is lost)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import assist_portal.crypto


class Migration(migrations.Migration):

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("notifications", "0013_fax_record"),
    ]

    operations = [
        migrations.CreateModel(
            name="AutosavedInput",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("values", assist_portal.crypto.EncryptedJSONField(default=dict)),
                ("based_on_version", models.PositiveIntegerField(default=0)),
                ("saved_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("notification", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                                   to="notifications.notification")),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                           to=settings.AUTH_USER_MODEL)),
            ],
            options={"constraints": [models.UniqueConstraint(fields=("notification", "user"),
                                                             name="one_autosave_per_person")]},
        ),
    ]
