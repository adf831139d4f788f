"""Packages of the facekit distribution: facekit and degan as they are, and the repository's cli/
folder as the package ``facekit_cli`` (pyproject.toml cannot map a folder to another package name
while also finding packages). Everything else is in pyproject.toml."""
from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["facekit", "facekit.*", "degan", "degan.*"]), "facekit_cli"],
      package_dir={"facekit_cli": "cli"})
