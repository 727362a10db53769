"""hook outbox: which hook targets (callable, webhook) already took a row

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hook_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivered_to', sqlmodel.sql.sqltypes.AutoString(length=32),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('hook_outbox', schema=None) as batch_op:
        batch_op.drop_column('delivered_to')
