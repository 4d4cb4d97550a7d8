-- A redelivery asked for while an attempt of the event is running is remembered on the
-- outbox row: the running attempt, whatever its outcome, then leaves the row due again
-- with a fresh budget instead of deleting it (before, the request was lost: the 202 was
-- followed by no fresh send). A claim clears the flag: the attempt it starts is the
-- requested one.
ALTER TABLE deliveries ADD COLUMN requeued INTEGER NOT NULL DEFAULT FALSE;
