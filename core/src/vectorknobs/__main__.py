"""``python -m vectorknobs`` runs the CLI."""

from vectorknobs.cli import main

raise SystemExit(main())
