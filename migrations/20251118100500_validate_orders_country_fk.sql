-- Step 2 of 2: validate the existing rows. VALIDATE CONSTRAINT takes only a
-- SHARE UPDATE EXCLUSIVE lock on orders, so reads and writes go on during
-- the scan.

-- migrate:up
ALTER TABLE orders VALIDATE CONSTRAINT orders_country_code_fkey;

-- migrate:down
-- Back to the state after step 1: the same constraint, not validated.
ALTER TABLE orders DROP CONSTRAINT orders_country_code_fkey;
ALTER TABLE orders
    ADD CONSTRAINT orders_country_code_fkey
    FOREIGN KEY (country_code) REFERENCES countries (code) NOT VALID;
