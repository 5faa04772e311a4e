"""upload state: the storage backend's state of an upload and the lease of the request
writing it

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'


def upgrade() -> None:
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('holder', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('held_until', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.drop_column('held_until')
        batch_op.drop_column('holder')
        batch_op.drop_column('state')
