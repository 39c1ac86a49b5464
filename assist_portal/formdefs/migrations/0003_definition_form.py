"""Form definitions are keyed by form (decision 2): existing rows are COVID-19 definitions (decision 4), unless
the definition itself states its form; published definitions are unique per (form, version)."""

from django.db import migrations, models

LEGACY_FORM = "covid19"  # frozen copy of formdefs.models.LEGACY_FORM at the time of this migration


def forms_from_definitions(apps, schema_editor):
    FormDefinition = apps.get_model("formdefs", "FormDefinition")
    for row in FormDefinition.objects.only("pk", "definition").iterator():
        stated = row.definition.get("form") if isinstance(row.definition, dict) else None
        if isinstance(stated, str) and stated.strip() and stated != LEGACY_FORM:
            FormDefinition.objects.filter(pk=row.pk).update(form=stated.strip()[:40])


class Migration(migrations.Migration):

    dependencies = [
        ("formdefs", "0002_drop_applied_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="formdefinition",
            name="form",
            field=models.CharField(db_index=True, default=LEGACY_FORM, max_length=40, verbose_name="様式"),
            preserve_default=False,
        ),
        migrations.RunPython(forms_from_definitions, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="formdefinition",
            name="one_published_definition_per_version",
        ),
        migrations.AddConstraint(
            model_name="formdefinition",
            constraint=models.UniqueConstraint(condition=models.Q(("status", "published")),
                                               fields=("form", "version"),
                                               name="one_published_definition_per_form_version"),
        ),
    ]
