"""Imports the adapters that ship with facekit so that they register."""
from . import bu4dfe, ckplus, folder, jaffe, mmi, oulu, video  # noqa: F401
