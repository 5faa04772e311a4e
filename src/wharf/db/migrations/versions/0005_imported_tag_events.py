"""imported images: a tag event may point at the image's source (its pull spec upstream)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'


def upgrade() -> None:
    # Plain ADD COLUMN of a nullable column: no table rebuild on SQLite, no rewrite on
    # PostgreSQL; every existing event was a push (NULL).
    op.add_column('tag_events', sa.Column('reference', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('tag_events', 'reference')
