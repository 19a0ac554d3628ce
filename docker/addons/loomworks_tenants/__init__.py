from . import tenant_map
from . import patches


def post_load():
    """Called by Odoo once the server-wide module is loaded (before workers fork)."""
    patches.install()
