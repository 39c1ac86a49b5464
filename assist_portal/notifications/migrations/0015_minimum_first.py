"""Branch emr (issue 9): Q&A 5 — a first report with the minimum items, the rest as an update (続報待ち)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0014_autosaved_input"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="follow_up_pending",
            field=models.BooleanField(default=False, verbose_name="続報待ち"),
        ),
        migrations.AddField(
            model_name="notificationrevision",
            name="scope",
            field=models.CharField(choices=[("full", "全項目"), ("minimum", "最小限の項目（Q&A 5、続報あり）")],
                                   default="full", max_length=8),
        ),
    ]
