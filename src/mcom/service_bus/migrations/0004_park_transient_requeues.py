from django.db import migrations, models


class Migration(migrations.Migration):
    """Parked messages remember whether the cause was transient (re-queued by cron) and how often
    they were re-queued (bounded by ``[queue] requeue_max``)."""

    dependencies = [
        ("service_bus", "0003_applied_inbound"),
    ]

    operations = [
        migrations.AddField(
            model_name="loggedmessage",
            name="park_transient",
            field=models.BooleanField(
                default=False,
                help_text="parked (error) because the retries ran out on a transient cause: re-queued by cron"),
        ),
        migrations.AddField(
            model_name="loggedmessage",
            name="requeues",
            field=models.PositiveIntegerField(default=0, help_text="automatic re-queues of a transient park so far"),
        ),
    ]
