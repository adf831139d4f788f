"""``python -m cli`` runs the facekit command group."""
from .facekit import main

main()
