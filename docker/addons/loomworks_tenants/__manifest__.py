# Loaded as a server-wide module (server_wide_modules in odoo.conf): it needs no database and
# installs nothing. Its post_load hook makes the server serve exactly the platform's tenants, each
# through that tenant's own database role (docs/operations/erp.md).
{
    "name": "Loomworks tenants",
    "summary": "Serve the platform's tenant map; connect to each tenant database with its own credentials",
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
