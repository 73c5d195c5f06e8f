"""`timber serve`: an HTTP inference server over the model store (see `app.py`)."""
