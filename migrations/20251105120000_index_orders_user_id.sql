-- orders is large in production: build the index without blocking writes.
-- CONCURRENTLY cannot run inside a transaction, hence transaction:false;
-- IF NOT EXISTS makes a rerun after `pgrollout repair` safe.

-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user_id_idx ON orders (user_id);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY IF EXISTS orders_user_id_idx;
