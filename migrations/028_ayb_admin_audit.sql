-- Audit log of admin changes: one row per mutating admin request, written in the same transaction as
-- the change itself, so a change that rolls back leaves no row. `actor` is a fingerprint of the admin
-- token (first 12 hex digits of its SHA-256), never the token.
CREATE TABLE _ayb_admin_audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text,
    remote_addr text,
    action text NOT NULL,
    target text,
    detail jsonb
);

-- Listing newest first (optionally by action), and pruning by age.
CREATE INDEX idx_ayb_admin_audit_at ON _ayb_admin_audit (at DESC, id DESC);
CREATE INDEX idx_ayb_admin_audit_action_at ON _ayb_admin_audit (action, at DESC, id DESC);
