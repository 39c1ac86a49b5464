"""Branch form2 (issue 7): a notification records its form; one open draft per patient AND form, so a patient may
have an open COVID-19 draft and an open EHEC draft at once. Existing rows take their definition's form."""

from django.db import migrations, models


def forms_from_definitions(apps, schema_editor):
    Notification = apps.get_model("notifications", "Notification")
    FormDefinition = apps.get_model("formdefs", "FormDefinition")
    for definition_id, form in FormDefinition.objects.values_list("pk", "form"):
        Notification.objects.filter(definition_id=definition_id).update(form=form)


class Migration(migrations.Migration):

    dependencies = [
        ("formdefs", "0003_definition_form"),
        ("notifications", "0006_revision_payload_required"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="form",
            field=models.CharField(default="covid19", max_length=40, verbose_name="様式"),
            preserve_default=False,
        ),
        migrations.RunPython(forms_from_definitions, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="notification",
            name="one_open_draft_per_patient",
        ),
        migrations.AddConstraint(
            model_name="notification",
            constraint=models.UniqueConstraint(condition=models.Q(("status", "draft")),
                                               fields=("hospital", "patient_ref", "form"),
                                               name="one_open_draft_per_patient_and_form"),
        ),
    ]
