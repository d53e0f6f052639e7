from django.db import migrations, models


def failures_are_of_the_current_prompt(apps, schema_editor):
    # Scenes that failed before the field existed failed for the prompt they have now, as far as we know.
    Scene = apps.get_model("projects", "Scene")
    Scene.objects.filter(status="failed").update(error_prompt=models.F("prompt"))


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0004_remove_character_claimed_by"),
    ]

    operations = [
        migrations.AddField(
            model_name="scene",
            name="error_prompt",
            field=models.TextField(blank=True, help_text="The prompt the last failure was for"),
        ),
        migrations.RunPython(failures_are_of_the_current_prompt, migrations.RunPython.noop),
    ]
