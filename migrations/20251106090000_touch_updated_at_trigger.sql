-- Keep users.updated_at current on every update.

-- migrate:up
CREATE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Only touch the row when something actually changed; a no-op update
    -- (NEW IS NOT DISTINCT FROM OLD) keeps its timestamp.
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER users_touch_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- migrate:down
DROP TRIGGER users_touch_updated_at ON users;
DROP FUNCTION touch_updated_at();
