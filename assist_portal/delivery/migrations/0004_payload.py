"""Frozen payloads (step 1 of 3): the Payload table and the new Delivery columns, nullable until they are filled
by notifications.0005_freeze_revisions. Delivery.revision becomes nullable (so the way back can refill it) and
loses its reverse accessor (`NotificationRevision.delivery` is the new forward link of the same name)."""
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import assist_portal.crypto


class Migration(migrations.Migration):

    dependencies = [
        ('delivery', '0003_redriven_at'),
        ('notifications', '0003_purge_and_unique_draft'),
    ]

    operations = [
        migrations.AlterField(
            model_name='delivery',
            name='revision',
            field=models.OneToOneField(null=True, on_delete=django.db.models.deletion.PROTECT,
                                       related_name='+', to='notifications.notificationrevision'),
        ),
        migrations.CreateModel(
            name='Payload',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('content', assist_portal.crypto.EncryptedBytesField(blank=True, null=True)),
                ('sha256', models.CharField(blank=True, max_length=64)),
                ('content_type', models.CharField(max_length=100)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('purged_at', models.DateTimeField(blank=True, null=True)),
                ('missing_reason', models.CharField(blank=True, max_length=300)),
            ],
            options={
                'verbose_name': '送信データ',
            },
        ),
        migrations.AddField(
            model_name='delivery',
            name='payload',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name='deliveries', to='delivery.payload'),
        ),
        migrations.AddField(
            model_name='delivery',
            name='stream',
            field=models.CharField(max_length=100, null=True),
        ),
        migrations.AddField(
            model_name='delivery',
            name='sequence',
            field=models.PositiveIntegerField(null=True),
        ),
    ]
