"""Frozen payloads (step 1 of 3, notifications side): a revision points to its payload and its delivery."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('delivery', '0004_payload'),
        ('notifications', '0003_purge_and_unique_draft'),
    ]

    operations = [
        migrations.AddField(
            model_name='notificationrevision',
            name='payload',
            field=models.OneToOneField(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+',
                                       to='delivery.payload'),
        ),
        migrations.AddField(
            model_name='notificationrevision',
            name='delivery',
            field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                       related_name='+', to='delivery.delivery'),
        ),
    ]
