-- Each tenant sees only its own orders: the application sets
-- app.account_id for the session (SET app.account_id = '42').

-- migrate:up
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;

CREATE POLICY orders_tenant_isolation ON orders
    USING (account_id = nullif(current_setting('app.account_id', true), '')::bigint);

-- migrate:down
DROP POLICY orders_tenant_isolation ON orders;
ALTER TABLE orders DISABLE ROW LEVEL SECURITY;
