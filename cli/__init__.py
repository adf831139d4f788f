"""Command-line entry points (thin wrappers over the facekit and degan libraries)."""
