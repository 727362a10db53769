"""the DLT URL / call-back number whitelist in the database (added and removed at run time)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'link_whitelist',
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('entry', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.PrimaryKeyConstraint('kind', 'key'),
    )


def downgrade() -> None:
    op.drop_table('link_whitelist')
