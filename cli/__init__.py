"""Command-line entry points (thin wrappers over the facekit and degan libraries), installed as the
package ``facekit_cli``: ``python -m facekit_cli`` runs ``facekit``, ``python -m facekit_cli.degan
train|eval|synthesize`` the degan commands (e.g. under ``torchrun``)."""
