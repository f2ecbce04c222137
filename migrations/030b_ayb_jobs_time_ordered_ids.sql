-- New job ids are time-ordered (UUID version 7: 48 bits of Unix milliseconds, then random bits).
--
-- Every update of a job - claim, outcome, heartbeat - writes a new entry for it into the primary key
-- (none can be HOT: each changes `state` or `lease_until`, which indexes read). With random
-- (version 4) ids the live jobs' keys are spread over the whole primary key, so once finished jobs
-- outnumber the buffer cache every claim and outcome touches, dirties and logs leaf pages all over
-- an index made almost entirely of finished jobs: a bare claim/complete loop drained 20,000 jobs at
-- about half the empty-table rate with 1,000,000 finished rows present. With time-ordered ids the
-- live jobs' keys sit together at the index's newest end, and the same loop runs at the
-- empty-table rate. Ids stay unguessable (74 random bits) and unique; the claim's (run_at, id)
-- tie-break now follows enqueue order. Existing ids are left as they are.
--
-- PostgreSQL 15 has no built-in version 7 generator: take a random one (its variant bits are
-- already right), put the milliseconds in its first 6 bytes and set the version nibble to 7
-- (bits 52 and 53 turn 0100 into 0111).
CREATE FUNCTION _ayb_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
        PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
        FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

ALTER TABLE _ayb_jobs ALTER COLUMN id SET DEFAULT _ayb_uuid_v7();
