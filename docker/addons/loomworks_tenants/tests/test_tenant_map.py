import json
import os
import tempfile

from odoo.tests.common import BaseCase, tagged

from ..tenant_map import TenantDirectory


@tagged("post_install", "-at_install", "loomworks")
class TestTenantMap(BaseCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="loomworks-tenants-")
        self.maintenance = os.path.join(self.dir, "maintenance")
        os.mkdir(self.maintenance)
        self.map_path = os.path.join(self.dir, "tenants.json")
        self.creds_path = os.path.join(self.dir, "credentials.json")
        self.addCleanup(lambda: __import__("shutil").rmtree(self.dir))

    def write(self, path, data):
        # Written as the platform does: a new file renamed over the old one.
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f) if not isinstance(data, str) else f.write(data)
        os.replace(tmp, path)

    def tenants(self, *entries):
        return {
            "version": 1,
            "maintenanceDir": self.maintenance,
            "tenants": [{"subdomain": s, "database": s, "state": st} for s, st in entries],
        }

    def test_serves_active_tenants_only(self):
        self.write(self.map_path, self.tenants(("acme", "active"), ("globex", "suspended"), ("init", "archived")))
        self.write(self.creds_path, {"version": 1, "databases": {}})
        d = TenantDirectory(self.map_path, self.creds_path)
        self.assertEqual(d.served_databases(), ["acme"])
        self.assertFalse(d.is_served("globex"))

    def test_reread_when_the_file_changes(self):
        d = TenantDirectory(self.map_path, self.creds_path)
        self.write(self.map_path, self.tenants(("acme", "active")))
        self.assertEqual(d.served_databases(), ["acme"])
        self.write(self.map_path, self.tenants(("acme", "suspended"), ("bravo", "active")))
        self.assertEqual(d.served_databases(), ["bravo"])

    def test_maintenance_flag_hides_a_tenant(self):
        self.write(self.map_path, self.tenants(("acme", "active"), ("bravo", "active")))
        d = TenantDirectory(self.map_path, self.creds_path)
        open(os.path.join(self.maintenance, "acme"), "w").close()
        self.assertEqual(d.served_databases(), ["bravo"])
        self.assertFalse(d.is_served("acme"))
        self.assertTrue(d.is_served("bravo"))
        os.remove(os.path.join(self.maintenance, "acme"))
        self.assertTrue(d.is_served("acme"))

    def test_fails_closed(self):
        d = TenantDirectory(self.map_path, self.creds_path)
        self.assertEqual(d.served_databases(), [])  # no file yet
        self.write(self.map_path, "{not json")
        self.assertEqual(d.served_databases(), [])
        self.write(self.map_path, {"version": 2, "tenants": []})
        self.assertEqual(d.served_databases(), [])

    def test_credentials_by_database(self):
        self.write(self.creds_path, {"version": 1, "databases": {"acme": {"user": "acme", "password": "s3cret"}}})
        d = TenantDirectory(self.map_path, self.creds_path)
        self.assertEqual(d.credentials("acme"), ("acme", "s3cret"))
        self.assertIsNone(d.credentials("globex"))
        self.write(self.creds_path, {"version": 1, "databases": {"acme": {"user": "acme", "password": "rotated"}}})
        self.assertEqual(d.credentials("acme"), ("acme", "rotated"))
