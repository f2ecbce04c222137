-- The built-in maintenance schedules (docs/cron.md, "Default schedules"). Inserted once, here, so that a default an operator
-- deleted stays deleted. next_run_at stays NULL: the daemon computes it at start from the cron.
INSERT INTO _ayb_job_schedules (name, job_type, payload, cron_expr, timezone, enabled, max_attempts)
VALUES
    ('session_cleanup_hourly',       'stale_session_cleanup',  '{}',                      '0 * * * *',  'UTC', true, 3),
    ('webhook_delivery_prune_daily', 'webhook_delivery_prune', '{"retention_hours":168}', '0 3 * * *',  'UTC', true, 3),
    ('expired_oauth_cleanup_daily',  'expired_oauth_cleanup',  '{}',                      '0 4 * * *',  'UTC', true, 3),
    ('expired_auth_cleanup_daily',   'expired_auth_cleanup',   '{}',                      '0 5 * * *',  'UTC', true, 3),
    ('job_prune_daily',              'job_prune',              '{}',                      '30 2 * * *', 'UTC', true, 3)
ON CONFLICT (name) DO NOTHING;
