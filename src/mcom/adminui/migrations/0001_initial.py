from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="McomSection",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
            ],
            options={
                "verbose_name": "MCOM section",
                "managed": False,
                "default_permissions": (),
                "permissions": [
                    ("mcom_view", "Can view the MCOM section"),
                    ("mcom_act", "Can act in the MCOM section (register, retry, export, configure)"),
                ],
            },
        ),
    ]
