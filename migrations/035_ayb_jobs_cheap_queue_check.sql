-- The queue-name rule, checked without the regular expression for the default queue.
--
-- The CHECK of migration 032 ran its regular expression for every inserted row, 'default'
-- included: about 4 µs a row, a fifth of a 1,000-job batch enqueue's time in Postgres. 'default'
-- satisfies the rule, so testing it first by equality gives the same constraint, and rows in other
-- queues are still matched against the expression. Every stored row satisfied the old constraint,
-- hence the new one: it is added NOT VALID (no scan under the table lock) and then validated.
ALTER TABLE _ayb_jobs DROP CONSTRAINT _ayb_jobs_queue_name;
ALTER TABLE _ayb_jobs ADD CONSTRAINT _ayb_jobs_queue_name
    CHECK (queue = 'default' OR queue ~ '^[A-Za-z0-9_.:-]{1,100}$') NOT VALID;
ALTER TABLE _ayb_jobs VALIDATE CONSTRAINT _ayb_jobs_queue_name;
