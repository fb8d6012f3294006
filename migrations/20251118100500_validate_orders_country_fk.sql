-- Step 2 of 2: validate the existing rows. VALIDATE CONSTRAINT takes only a
-- SHARE UPDATE EXCLUSIVE lock on orders, so reads and writes go on during
-- the scan.

-- migrate:up
ALTER TABLE orders VALIDATE CONSTRAINT orders_country_code_fkey;

-- migrate:down
-- Nothing to undo: a validated constraint is the same constraint. Rolling back
-- the previous migration drops it.
