-- Reference countries from orders without a long lock: the constraint is
-- added NOT VALID (instant, only new rows are checked), then validated,
-- which scans the table under a lock that lets reads and writes go on.

-- migrate:up
ALTER TABLE orders
    ADD CONSTRAINT orders_country_code_fkey
    FOREIGN KEY (country_code) REFERENCES countries (code) NOT VALID;

ALTER TABLE orders VALIDATE CONSTRAINT orders_country_code_fkey;

-- migrate:down
ALTER TABLE orders DROP CONSTRAINT orders_country_code_fkey;
