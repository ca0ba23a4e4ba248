"""Partitions shared by every per-site asset: one daily partition per site-local day."""


import dagster as dg


def site_days(site) -> dg.DailyPartitionsDefinition:
    """Days in the site's own timezone (Matomo's reports are), from its start date to today.

    ``end_offset=1`` makes today a partition: EEA imports hourly, and a sensor that asks for a
    partition that does not exist yet fails its whole tick. Today stays Partial until all its
    expected files are in.
    """
    return dg.DailyPartitionsDefinition(start_date=site.start_date.isoformat(), timezone=site.timezone, end_offset=1)
