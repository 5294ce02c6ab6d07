from django.db import migrations, models

# Earlier releases named three events differently; their meaning is unchanged.
RENAMED = {"dawn": "dawn_civil", "noon": "solar_noon", "dusk": "dusk_civil"}


def rename_events(apps, schema_editor):
    SolarSchedule = apps.get_model("djqueue", "SolarSchedule")
    for old, new in RENAMED.items():
        SolarSchedule.objects.filter(event=old).update(event=new)


def restore_events(apps, schema_editor):
    SolarSchedule = apps.get_model("djqueue", "SolarSchedule")
    for old, new in RENAMED.items():
        SolarSchedule.objects.filter(event=new).update(event=old)


class Migration(migrations.Migration):

    dependencies = [
        ("djqueue", "0011_claimed_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="solarschedule",
            name="event",
            field=models.CharField(
                choices=[
                    ("dawn_astronomical", "Astronomical dawn"),
                    ("dawn_nautical", "Nautical dawn"),
                    ("dawn_civil", "Civil dawn"),
                    ("sunrise", "Sunrise"),
                    ("solar_noon", "Solar noon"),
                    ("sunset", "Sunset"),
                    ("dusk_civil", "Civil dusk"),
                    ("dusk_nautical", "Nautical dusk"),
                    ("dusk_astronomical", "Astronomical dusk"),
                ],
                max_length=24,
            ),
        ),
        migrations.RunPython(rename_events, restore_events),
    ]
