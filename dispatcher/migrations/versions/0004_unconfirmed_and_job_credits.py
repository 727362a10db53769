"""unconfirmed messages and each gateway job's credits

A send answer that does not list a recipient leaves the message `unconfirmed` until the delivery reports
show whether the gateway has it; the sweeper and the metrics find those rows through the attention index,
which now covers them. Each gateway job records the credits reserved for its call, the credits the
gateway's answers (send answer, then reports) show it charged, and the credits released.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

OLD_WHERE = "state IN ('held', 'sending', 'unknown')"
NEW_WHERE = "state IN ('held', 'sending', 'unknown', 'unconfirmed')"
COLUMNS = ('credits_reserved', 'credits_charged', 'credits_released')


def _attention(where: str) -> None:
    op.drop_index('ix_message_attention', table_name='message')
    op.create_index('ix_message_attention', 'message', ['state', 'updated_at'], unique=False,
                    postgresql_where=sa.text(where), sqlite_where=sa.text(where))


def upgrade() -> None:
    _attention(NEW_WHERE)
    with op.batch_alter_table('gateway_job', schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('gateway_job', schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.drop_column(name)
    _attention(OLD_WHERE)
