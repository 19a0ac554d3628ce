from . import test_tenant_map
