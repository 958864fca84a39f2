-- no-transaction
-- Built without locking writes; CONCURRENTLY cannot run inside a transaction.
CREATE INDEX CONCURRENTLY orders_customer_id ON orders (customer_id);
