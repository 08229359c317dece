"""Resources of the code location, each read from the environment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
from pydantic import Field

from cei_assets import settings
from cei_assets.landing import landing_dates
from cei_assets.warehouse import WarehouseResource

__all__ = ["LandingZoneResource", "WarehouseResource"]


class LandingZoneResource(dg.ConfigurableResource):
    """The landing root the feeds drop files into (``CEI_LANDING_DIR``)."""

    root: str = Field(description="Folder holding reference/, opening/ and one folder per trading date.")

    @classmethod
    def from_environment(cls) -> LandingZoneResource:
        return cls(root=str(settings.landing_dir()))

    @property
    def path(self) -> Path:
        return Path(self.root)

    def first_date(self) -> dt.date | None:
        """The landing root's first trading date: its books start from the opening files."""
        dates = landing_dates(self.path)
        return dates[0] if dates else None
