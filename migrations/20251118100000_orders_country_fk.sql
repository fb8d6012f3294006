-- Reference countries from orders without a long lock. Step 1 of 2: the
-- constraint is added NOT VALID, which is instant (existing rows are not
-- checked, new and updated rows are). Validation is the next migration: in
-- this transaction it would scan orders while still holding this ALTER's lock.

-- migrate:up
ALTER TABLE orders
    ADD CONSTRAINT orders_country_code_fkey
    FOREIGN KEY (country_code) REFERENCES countries (code) NOT VALID;

-- migrate:down
ALTER TABLE orders DROP CONSTRAINT orders_country_code_fkey;
