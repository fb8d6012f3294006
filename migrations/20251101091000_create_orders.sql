-- Orders and their line items.

-- migrate:up
CREATE TABLE orders (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   bigint NOT NULL REFERENCES accounts (id),
    user_id      bigint NOT NULL REFERENCES users (id),
    placed_at    timestamptz NOT NULL DEFAULT now(),
    note         text
);

CREATE TABLE order_items (
    order_id     bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id   bigint NOT NULL REFERENCES products (id),
    quantity     integer NOT NULL CHECK (quantity > 0),
    unit_cents   bigint NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

-- migrate:down
DROP TABLE order_items;
DROP TABLE orders;
