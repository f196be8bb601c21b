"""The official weights, one command away (`fgnet weights list | download | verify`)."""
from fgnet_core.weights.registry import OFFICIAL_FILES, WeightFile, files_for, manual_instructions
from fgnet_core.weights.verify import verify_file

__all__ = ["OFFICIAL_FILES", "WeightFile", "files_for", "manual_instructions", "verify_file"]
