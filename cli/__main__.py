"""``python -m facekit_cli`` (from a checkout also ``python -m cli``) runs the facekit command group."""
from .facekit import main

main()
