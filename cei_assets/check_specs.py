"""Asset-check specs recorded per trading date."""

import warnings

import dagster as dg


def check_spec(name: str, **kwargs) -> dg.AssetCheckSpec:
    """An AssetCheckSpec; with ``partitions_def`` its results are recorded per trading date.

    Partitioned check specs are a Dagster preview feature that CEI relies on deliberately: a
    check result must say which trading date it judged. The preview warning is silenced here
    and only here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(name, **kwargs)
