"""Frozen payloads (step 3 of 3, notifications side): every revision has a payload from now on."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('delivery', '0005_drop_revision'),
        ('notifications', '0005_freeze_revisions'),
    ]

    operations = [
        migrations.AlterField(
            model_name='notificationrevision',
            name='payload',
            field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='+',
                                       to='delivery.payload'),
        ),
    ]
