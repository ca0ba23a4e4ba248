"""Resources: how the Dagster layer reaches the engine's settings, ledger and site list.

Every value is optional: unset means the engine's own environment variables and defaults
(``MATOMO_URL``, ``MATOMO_API_TOKEN``, ``ANALYTICS_INGEST_HOME``, ``ANALYTICS_INGEST_LEDGER_URL``,
``ANALYTICS_INGEST_SITES``), so the embedded default runs offline with no configuration. In a
deployment, pass secrets as ``dg.EnvVar`` so they never appear in the UI or run config.
"""


import contextlib

import dagster as dg

from ..config import load_settings
from ..engine import open_ledger
from ..sites import load_sites


class IngestResource(dg.ConfigurableResource):
    """Settings, ledger and sites of analytics_ingest."""

    home: str | None = None
    ledger_url: str | None = None
    matomo_url: str | None = None
    matomo_token: str | None = None
    sites_file: str | None = None

    def settings(self):
        return load_settings(home=self.home, ledger_url=self.ledger_url, matomo_url=self.matomo_url,
                             matomo_token=self.matomo_token)

    def sites(self):
        return load_sites(self.sites_file)

    @contextlib.contextmanager
    def ledger(self):
        ledger = open_ledger(self.settings())
        try:
            yield ledger
        finally:
            ledger.close()


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"ingest": IngestResource()})
