from . import json_formatter


def post_load():
    """Called by Odoo once the server-wide module is loaded (before workers fork)."""
    json_formatter.install_from_env()
