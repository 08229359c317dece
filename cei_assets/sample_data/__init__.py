"""Sample landing data in the landing format, version 1, and the fault catalogue."""

from cei_assets.sample_data.faults import FAULTS, Fault
from cei_assets.sample_data.generator import GenerationSummary, generate_landing

__all__ = ["FAULTS", "Fault", "GenerationSummary", "generate_landing"]
