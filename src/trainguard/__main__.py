"""``python -m trainguard`` runs the CLI."""

from trainguard.cli.main import main

main()
