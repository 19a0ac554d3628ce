"""Hooks the server onto the tenant map: which databases exist for it, and how it connects to each.

* ``odoo.service.db.list_dbs``: the served tenants (Odoo's own listing connects to ``postgres`` and
  lists the databases its role owns; the ERP's role owns none and reaches no tenant by itself).
* ``odoo.http.db_filter``: a session bound to a database that is no longer served (suspended,
  archived, restoring) is logged out, as for a database the ``dbfilter`` rejects; ``dbfilter``
  keeps its meaning on top.
* ``odoo.sql_db.connection_info_for``: a tenant database is opened with that tenant's own role;
  ``odoo.sql_db.Connection.cursor``: a registry opened before a password rotation takes the new
  password for its next connection (a registry keeps its connection parameters for its lifetime).
* ``ir_cron._process_jobs``: the cron workers skip databases that are not served.
"""

import logging
import os

import odoo
from odoo.tools import config

from .tenant_map import TenantDirectory

_logger = logging.getLogger(__name__)

MAP_OPTION = "loomworks_tenant_map"
CREDENTIALS_OPTION = "loomworks_tenant_credentials"
MAP_ENV = "LOOMWORKS_TENANT_MAP"
CREDENTIALS_ENV = "LOOMWORKS_TENANT_CREDENTIALS"

directory = None


def _setting(option, env):
    return os.environ.get(env) or config.get(option) or None


def install():
    """Applies the hooks when both files are configured (odoo.conf options or environment)."""
    global directory  # noqa: PLW0603
    map_path = _setting(MAP_OPTION, MAP_ENV)
    credentials_path = _setting(CREDENTIALS_OPTION, CREDENTIALS_ENV)
    if not (map_path and credentials_path):
        _logger.warning(
            "loomworks_tenants: %s and %s are not both set; the server lists and connects as stock Odoo",
            MAP_OPTION,
            CREDENTIALS_OPTION,
        )
        return
    if directory is not None:
        return
    directory = TenantDirectory(map_path, credentials_path)
    _patch_list_dbs()
    _patch_db_filter()
    _patch_connection_info()
    _patch_cron()
    _logger.info("loomworks_tenants: serving the tenants of %s", map_path)


def _patch_list_dbs():
    def list_dbs(force=False):
        if not config["list_db"] and not force:
            raise odoo.exceptions.AccessDenied()
        return directory.served_databases()

    odoo.service.db.list_dbs = list_dbs


def _patch_db_filter():
    stock = odoo.http.db_filter

    def db_filter(dbs, host=None):
        return stock([db for db in dbs if directory.is_served(db)], host)

    odoo.http.db_filter = db_filter


def _patch_connection_info():
    stock = odoo.sql_db.connection_info_for

    def connection_info_for(db_or_uri, readonly=False):
        db_name, info = stock(db_or_uri, readonly)
        if "dsn" not in info:
            creds = directory.credentials(db_name)
            if creds:
                info["user"], info["password"] = creds
        return db_name, info

    odoo.sql_db.connection_info_for = connection_info_for

    stock_cursor = odoo.sql_db.Connection.cursor

    def cursor(self):
        info = self._Connection__dsn
        creds = directory.credentials(self.dbname)
        if creds and "dsn" not in info and (info.get("user"), info.get("password")) != creds:
            self._Connection__dsn = dict(info, user=creds[0], password=creds[1])
        return stock_cursor(self)

    odoo.sql_db.Connection.cursor = cursor


def _patch_cron():
    from odoo.addons.base.models.ir_cron import ir_cron

    stock = ir_cron.__dict__["_process_jobs"].__func__

    def _process_jobs(cls, db_name):
        if not directory.is_served(db_name):
            _logger.debug("loomworks_tenants: cron skips %s (not served)", db_name)
            return
        return stock(cls, db_name)

    ir_cron._process_jobs = classmethod(_process_jobs)
