"""``python -m mlpq.api_cli`` runs the CLI."""

from mlpq.api_cli.cli import main

main()
