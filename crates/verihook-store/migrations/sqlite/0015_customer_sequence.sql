-- Sequence numbers per customer (CONTRACT §11): each event carries its place among its
-- customer's events, and the customer the latest number given, which the next change
-- continues from under the customer's row lock. Events written before this migration are
-- numbered in the order they were stored.
ALTER TABLE customers ADD COLUMN last_sequence INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN sequence INTEGER NOT NULL DEFAULT 0;
UPDATE events SET sequence = numbered.n FROM (
    SELECT seq, row_number() OVER (PARTITION BY customer_id ORDER BY seq) AS n FROM events
) numbered WHERE numbered.seq = events.seq;
UPDATE customers SET last_sequence = counted.n FROM (
    SELECT customer_id, count(*) AS n FROM events GROUP BY customer_id
) counted WHERE counted.customer_id = customers.id;
