"""Order.maker_fee_rate / taker_fee_rate (issue 11, fee tiers): the rates fixed at accept.

Added nullable, filled from each existing order's market's current fees (what settlement
charged them until now), then made NOT NULL: from here on accept writes them and settlement
charges them instead of the market's.
"""

from django.db import migrations, models

FILL = """
UPDATE trading_order o SET maker_fee_rate = m.maker_fee, taker_fee_rate = m.taker_fee
FROM markets_market m WHERE m.id = o.market_id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0005_backfill_market_data"),
        ("markets", "0004_fee_tiers"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="maker_fee_rate",
            field=models.DecimalField(decimal_places=6, max_digits=10, null=True),
        ),
        migrations.AddField(
            model_name="order",
            name="taker_fee_rate",
            field=models.DecimalField(decimal_places=6, max_digits=10, null=True),
        ),
        migrations.RunSQL(FILL, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="order",
            name="maker_fee_rate",
            field=models.DecimalField(decimal_places=6, max_digits=10),
        ),
        migrations.AlterField(
            model_name="order",
            name="taker_fee_rate",
            field=models.DecimalField(decimal_places=6, max_digits=10),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.CheckConstraint(
                condition=models.Q(("maker_fee_rate__gte", 0), ("maker_fee_rate__lt", 1)),
                name="order_maker_rate_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.CheckConstraint(
                condition=models.Q(("taker_fee_rate__gte", 0), ("taker_fee_rate__lt", 1)),
                name="order_taker_rate_range",
            ),
        ),
    ]
