"""Frozen payloads (step 3 of 3): every delivery now has its payload, stream and sequence; the outbox forgets the
notification revision (notifications point to deliveries, never the other way)."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('delivery', '0004_payload'),
        ('notifications', '0005_freeze_revisions'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='delivery',
            name='revision',
        ),
        migrations.AlterField(
            model_name='delivery',
            name='payload',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='deliveries',
                                    to='delivery.payload'),
        ),
        migrations.AlterField(
            model_name='delivery',
            name='stream',
            field=models.CharField(max_length=100),
        ),
        migrations.AlterField(
            model_name='delivery',
            name='sequence',
            field=models.PositiveIntegerField(),
        ),
        migrations.AddConstraint(
            model_name='delivery',
            constraint=models.UniqueConstraint(fields=('stream', 'sequence'), name='one_delivery_per_sequence'),
        ),
    ]
