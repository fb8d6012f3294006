-- Order status as an enum, with a constant default: since PostgreSQL 11 a
-- constant default does not rewrite the table.

-- migrate:up
CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'cancelled');

ALTER TABLE orders ADD COLUMN status order_status NOT NULL DEFAULT 'pending';
ALTER TABLE orders ADD COLUMN country_code text;

-- Data migration: orders placed before the cutover are considered paid.
UPDATE orders SET status = 'paid' WHERE placed_at < '2025-11-15';

-- migrate:down
ALTER TABLE orders DROP COLUMN country_code;
ALTER TABLE orders DROP COLUMN status;
DROP TYPE order_status;
