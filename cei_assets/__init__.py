import warnings

# Partitioned asset-check specs are a Dagster preview feature; CEI relies on it on purpose so
# every check result is recorded against its trading date.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")
