"""``python -m training.sweep SPEC.toml --out DIR``: the same as ``dynafit sweep``."""

from ._cli import main

raise SystemExit(main())
