-- The installed version ("loomworks quota api v2"), read back by lib/guards/install.ts and by the
-- quota API's downgrade check.
COMMENT ON SCHEMA {{schema}} IS '{{version_comment}}';
