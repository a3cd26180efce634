"""``python -m training ...`` is ``dynafit train ...``."""

from .cli import main

raise SystemExit(main())
