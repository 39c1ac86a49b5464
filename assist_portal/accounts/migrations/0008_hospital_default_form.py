from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0007_hospital_raw_push"),
    ]

    operations = [
        migrations.AddField(
            model_name="hospital",
            name="default_form",
            field=models.CharField(blank=True, default="", max_length=40, verbose_name="既定の届出様式"),
        ),
    ]
