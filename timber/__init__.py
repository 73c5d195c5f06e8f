"""Timber: compile trained classical ML models to fast native inference code.

    import timber
    model = timber.compile("model.json")     # XGBoost, LightGBM, CatBoost, ...
    model.predict(X)                         # what the framework's own predict returns
"""

from ir.diagnostics import TimberError

__version__ = "0.1.0"
__all__ = ["CompiledModel", "TimberError", "compile", "load", "load_pickle"]


def compile(model, **options):
    """Compile a model file (or a `lightgbm.Booster`, or an IR module) for this machine; see `timber.api.compile`."""
    from .api import compile as _compile

    return _compile(model, **options)


def load(path, **options):
    """Read a model file into verified Timber IR (a `builtin.module`)."""
    from .detect import load_model

    return load_model(path, **options)


def load_pickle(path_or_bytes):
    """A compiled model from pickle bytes or a file, through Timber's restricted unpickler (it
    refuses any global but `timber.artifact.from_artifact` before running anything)."""
    from .artifact import load_pickle as _load_pickle

    return _load_pickle(path_or_bytes)


def __getattr__(name):
    if name == "CompiledModel":
        from .api import CompiledModel

        return CompiledModel
    raise AttributeError(name)
