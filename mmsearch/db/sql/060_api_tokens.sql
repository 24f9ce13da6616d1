-- API tokens (table: migration 0002_api_tokens). The HTTP service reads as the service login
-- (a member of the app role), which cannot read mmsearch.api_token; it may only ask for the
-- principals of a token it was shown, by the token's SHA-256. Nobody can list tokens but the
-- owner.

CREATE OR REPLACE FUNCTION mmsearch.api_token_principals(p_token_sha256 bytea)
RETURNS text[]
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog
AS $$
DECLARE
    found text[];
BEGIN
    SELECT t.principals INTO found FROM mmsearch.api_token AS t
    WHERE t.token_sha256 = p_token_sha256;
    IF found IS NOT NULL THEN
        -- at most once a minute, and never waiting for a concurrent request's update
        UPDATE mmsearch.api_token SET last_used_at = now()
        WHERE id = (SELECT t.id FROM mmsearch.api_token AS t
                    WHERE t.token_sha256 = p_token_sha256
                      AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute')
                    FOR UPDATE SKIP LOCKED);
    END IF;
    RETURN found;
END
$$;
COMMENT ON FUNCTION mmsearch.api_token_principals(bytea) IS
    'Principals of the API token with this SHA-256 (NULL: no such token); records its last use.';
REVOKE ALL ON FUNCTION mmsearch.api_token_principals(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mmsearch.api_token_principals(bytea) TO :"role_app";
