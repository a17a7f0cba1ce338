"""Reference plugins: content types and first stages for kinds of upstream repositories.

Each plugin is a subpackage: :mod:`stageline.plugins.file` syncs a folder of files listed
in a ``PULP_MANIFEST``. A plugin sits above :mod:`stageline.sync` and below the CLI.
"""

__all__: list[str] = []
