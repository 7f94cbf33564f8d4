"""The toolbox's measuring room: load generators (``oee bench``, ``oee soak``) and the tools
behind the figures in ``docs/performance.md``, each run as ``python -m bench.<name>``.

Nothing in ``services/`` (but the ``oee`` command) or ``shared/`` imports it; tests may."""
