"""message indexes cover only the rows their queries look for

Every state change of a message adds an entry to every index whose condition the new row meets; with the
full indexes of 0001 a message paid nine index entries four times on its way to `sent`. The bulk id index
had no query; counting by (state, channel) (metrics) is a scan. On PostgreSQL the idempotency key's
UNIQUE constraint becomes a unique index over the rows that have a key (NULLs were indexed too); SQLite
keeps the constraint (dropping it means rebuilding the table; the rule is the same).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

PARTIAL = (
    ('ix_message_unpushed', ['pushed_at'], "state = 'queued' AND batch_id IS NULL"),
    ('ix_message_scheduled', ['send_at'], "state = 'scheduled'"),
    ('ix_message_attention', ['state', 'updated_at'], "state IN ('held', 'sending', 'unknown')"),
    ('ix_message_failed', ['final_at'], "state = 'failed'"),
    ('ix_message_gateway_job', ['gateway_job_id'], 'gateway_job_id IS NOT NULL'),
    ('ix_message_batch', ['batch_id'], 'batch_id IS NOT NULL'),
)
FULL = (
    ('ix_message_state_pushed', ['state', 'pushed_at']),
    ('ix_message_state_send_at', ['state', 'send_at']),
    ('ix_message_state_channel', ['state', 'channel']),
    ('ix_message_gateway_job', ['gateway_job_id']),
    ('ix_message_batch', ['batch_id']),
    ('ix_message_bulk', ['bulk_id']),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_constraint('message_idempotency_key_key', 'message', type_='unique')
        op.create_index('ix_message_idempotency', 'message', ['idempotency_key'], unique=True,
                        postgresql_where=sa.text('idempotency_key IS NOT NULL'))
    for name, _ in FULL:
        op.drop_index(name, table_name='message')
    for name, cols, where in PARTIAL:
        op.create_index(name, 'message', cols, unique=False, postgresql_where=sa.text(where),
                        sqlite_where=sa.text(where))


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_message_idempotency', table_name='message')
        op.create_unique_constraint('message_idempotency_key_key', 'message', ['idempotency_key'])
    for name, _, _ in PARTIAL:
        op.drop_index(name, table_name='message')
    for name, cols in FULL:
        op.create_index(name, 'message', cols, unique=False)
