-- Order totals for reporting.

-- migrate:up
CREATE VIEW order_totals AS
SELECT o.id AS order_id,
       o.account_id,
       o.placed_at,
       coalesce(sum(i.quantity * i.unit_cents), 0) AS total_cents,
       count(i.product_id) AS line_count
FROM orders AS o
LEFT JOIN order_items AS i ON i.order_id = o.id
GROUP BY o.id;

-- migrate:down
DROP VIEW order_totals;
