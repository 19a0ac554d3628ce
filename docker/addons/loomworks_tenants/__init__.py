from . import tenant_map
from . import filestore_retire
from . import patches


def post_load():
    """Called by Odoo once the server-wide module is loaded (before workers fork)."""
    filestore_retire.install()
    patches.install()
