# Loaded as a server-wide module (server_wide_modules in odoo.conf): it needs no database and
# installs nothing; its post_load hook switches the server's log output to JSON lines.
{
    "name": "Loomworks JSON logging",
    "summary": "One JSON object per log record on the server's log handlers (LOOMWORKS_LOG_FORMAT=json)",
    "version": "18.0.1.0.0",
    "category": "Hidden/Tools",
    "author": "Loomworks",
    "license": "LGPL-3",
    "depends": ["base"],
    "data": [],
    "installable": True,
    "auto_install": False,
    "post_load": "post_load",
}
