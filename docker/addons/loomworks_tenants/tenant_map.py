"""The platform's rendered tenant map and tenant credentials, re-read whenever a file changes.

Two JSON files, both written by the platform (lib/odoo/tenantMap.ts renders them for every target):

* the map (``loomworks_tenant_map``): ``{"version": 1, "maintenanceDir": "...", "tenants": [
  {"subdomain": "acme", "database": "acme", "state": "active"}, ...]}``. Only ``active`` tenants
  are served, and not while ``<maintenanceDir>/<subdomain>`` exists (a restore in progress).
* the credentials (``loomworks_tenant_credentials``, a secret): ``{"version": 1, "databases":
  {"acme": {"user": "acme", "password": "..."}}}``.

Nothing here imports Odoo: the files are named by the caller, so the module is tested on its own.
Reading fails closed: a missing, unreadable or malformed map serves no database.
"""

import json
import logging
import os
import threading

_logger = logging.getLogger(__name__)

SUPPORTED_VERSION = 1


class TenantFileError(ValueError):
    pass


def _stat_key(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _load_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise TenantFileError("%s %s does not exist" % (what, path)) from None
    except (OSError, ValueError) as e:
        raise TenantFileError("%s %s cannot be read: %s" % (what, path, e)) from None
    if not isinstance(data, dict) or data.get("version") != SUPPORTED_VERSION:
        raise TenantFileError("%s %s: expected an object with version %d" % (what, path, SUPPORTED_VERSION))
    return data


def parse_map(data, path="<map>"):
    """(served candidates, maintenance dir): database -> subdomain for the active tenants."""
    tenants = data.get("tenants")
    if not isinstance(tenants, list):
        raise TenantFileError("tenant map %s: tenants must be a list" % path)
    active = {}
    for t in tenants:
        if not isinstance(t, dict) or not all(isinstance(t.get(k), str) for k in ("subdomain", "database", "state")):
            raise TenantFileError("tenant map %s: every tenant needs subdomain, database and state" % path)
        if t["state"] == "active":
            active[t["database"]] = t["subdomain"]
    maintenance_dir = data.get("maintenanceDir") or None
    if maintenance_dir is not None and not isinstance(maintenance_dir, str):
        raise TenantFileError("tenant map %s: maintenanceDir must be a string" % path)
    return active, maintenance_dir


def parse_credentials(data, path="<credentials>"):
    databases = data.get("databases")
    if not isinstance(databases, dict):
        raise TenantFileError("tenant credentials %s: databases must be an object" % path)
    creds = {}
    for db, c in databases.items():
        if not isinstance(c, dict) or not isinstance(c.get("user"), str) or not isinstance(c.get("password"), str):
            raise TenantFileError("tenant credentials %s: %s needs user and password strings" % (path, db))
        creds[db] = (c["user"], c["password"])
    return creds


def _listdir(path):
    try:
        return set(os.listdir(path))
    except FileNotFoundError:
        return set()


class _CachedFile:
    """A parsed file, parsed again when its mtime, size or inode changes (atomic renames included)."""

    def __init__(self, path, what, parse, empty):
        self.path = path
        self.what = what
        self.parse = parse
        self.empty = empty
        self._key = object()
        self._value = empty
        self._lock = threading.Lock()

    def get(self):
        key = _stat_key(self.path)
        if key == self._key:
            return self._value
        with self._lock:
            if key != self._key:
                try:
                    self._value = self.parse(_load_json(self.path, self.what), self.path)
                    _logger.info("loomworks: %s %s loaded", self.what, self.path)
                except TenantFileError as e:
                    self._value = self.empty
                    _logger.error("loomworks: %s; serving no tenant until it is fixed", e)
                self._key = key
        return self._value


class TenantDirectory:
    """What the server serves and how it connects, from the two files."""

    def __init__(self, map_path, credentials_path):
        self._map = _CachedFile(map_path, "tenant map", parse_map, ({}, None))
        self._creds = _CachedFile(credentials_path, "tenant credentials", parse_credentials, {})

    def served_databases(self):
        """Sorted names of the databases served now (one directory listing for the maintenance flags)."""
        active, maintenance_dir = self._map.get()
        flagged = _listdir(maintenance_dir) if maintenance_dir else set()
        return sorted(db for db, sub in active.items() if sub not in flagged)

    def is_served(self, database):
        """Whether one database is served now (one stat for its maintenance flag)."""
        active, maintenance_dir = self._map.get()
        sub = active.get(database)
        if sub is None:
            return False
        return not (maintenance_dir and os.path.exists(os.path.join(maintenance_dir, sub)))

    def credentials(self, database):
        """(user, password) of a database's own role, or None."""
        return self._creds.get().get(database)
