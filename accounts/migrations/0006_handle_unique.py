from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_handles_fill"),
    ]

    operations = [
        migrations.AlterField(
            model_name="user",
            name="handle",
            field=models.CharField(
                help_text="Your @handle: how fans mention you and find your profile (/u/<handle>/).",
                max_length=30,
                unique=True,
            ),
        ),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.CheckConstraint(
                condition=models.Q(("handle__regex", "^[a-z0-9_-]{3,30}$")),
                name="accounts_user_handle_format",
            ),
        ),
    ]
