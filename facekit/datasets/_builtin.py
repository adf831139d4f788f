"""Imports the adapters that ship with facekit so that they register."""
