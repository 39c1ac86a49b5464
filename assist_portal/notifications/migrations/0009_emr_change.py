"""Branch emr (issue 9): newer EMR extracts become pending changes a person accepts or dismisses."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import assist_portal.crypto


class Migration(migrations.Migration):

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("notifications", "0008_reconciliation"),
    ]

    operations = [
        migrations.CreateModel(
            name="EmrChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(choices=[("value", "値の変更"), ("test_add", "検査の追加"),
                                                   ("test_update", "検査の変更"), ("test_remove", "検査の取消"),
                                                   ("class_change", "類型の変更")], max_length=16)),
                ("item_id", models.CharField(max_length=120)),
                ("row_key", models.CharField(blank=True, default="", max_length=64)),
                ("new_value", assist_portal.crypto.EncryptedJSONField(default=None, null=True)),
                ("previous_value", assist_portal.crypto.EncryptedJSONField(default=None, null=True)),
                ("source", models.CharField(blank=True, default="", max_length=200)),
                ("fingerprint", models.CharField(db_index=True, max_length=64)),
                ("status", models.CharField(choices=[("pending", "未確認"), ("accepted", "反映"),
                                                     ("dismissed", "反映しない"), ("superseded", "新しい抽出で不要")],
                                            db_index=True, default="pending", max_length=12)),
                ("detected_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("decided_at", models.DateTimeField(blank=True, null=True)),
                ("decided_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                                 related_name="+", to=settings.AUTH_USER_MODEL)),
                ("extract", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                              related_name="+", to="notifications.extract")),
                ("notification", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                   related_name="emr_changes", to="notifications.notification")),
            ],
            options={"ordering": ["detected_at", "id"],
                     "indexes": [models.Index(fields=["notification", "status"], name="emr_change_open")]},
        ),
    ]
