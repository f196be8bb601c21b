"""Running a trained model on your own images, folders and videos (`fgnet predict`)."""
from fgnet_core.predict.models import LoadedModel, ModelNotFoundError, ModelSpecError, resolve_model
from fgnet_core.predict.run import predict, result_columns

__all__ = ["LoadedModel", "ModelNotFoundError", "ModelSpecError", "predict", "resolve_model", "result_columns"]
