-- The API's schema, owned by its NOLOGIN owner role; PUBLIC gets nothing on it (the API's grants say
-- what the tenant may use). Run by the installer (lib/sql/modules.ts) before the API's definitions.
CREATE SCHEMA IF NOT EXISTS {{schema}} AUTHORIZATION {{owner}};
ALTER SCHEMA {{schema}} OWNER TO {{owner}};
REVOKE ALL ON SCHEMA {{schema}} FROM PUBLIC;
