-- Customers and their contact data (the scrub step of the clone pipeline masks these).
CREATE TABLE customers (
    id         BIGSERIAL PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    phone      TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX customers_created_at ON customers (created_at);
