"""blob collection: when each blob was last used, its deletion lease, and which blobs each
manifest names (filled in here from the stored manifests)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'


def upgrade() -> None:
    # Plain ADD COLUMN: SQLite needs no table rebuild for it (and a rebuild of `blobs` would
    # trip the foreign keys that name it).
    op.add_column('blobs', sa.Column('touched_at', sa.DateTime(), nullable=True))
    op.add_column('blobs', sa.Column('deleting_until', sa.DateTime(), nullable=True))
    op.execute('UPDATE blobs SET touched_at = created_at')
    table = op.create_table(
        'manifest_blobs',
        sa.Column('manifest_digest', sa.String(length=160), nullable=False),
        sa.Column('blob_digest', sa.String(length=160), nullable=False),
        sa.PrimaryKeyConstraint('manifest_digest', 'blob_digest'),
    )
    op.create_index('ix_manifest_blobs_blob_digest', 'manifest_blobs', ['blob_digest'])
    _fill(table)


def _fill(table: sa.Table) -> None:
    from wharf.oci.manifest import InvalidManifest, parse_manifest

    conn = op.get_bind()
    rows = conn.execute(sa.text('SELECT digest, media_type, payload FROM manifests'))
    names = []
    for digest, media_type, payload in rows:
        try:
            parsed = parse_manifest(bytes(payload), media_type)
        except InvalidManifest:
            continue  # stored manifests were valid when stored
        names += [
            {'manifest_digest': digest, 'blob_digest': d}
            for d in sorted({b.digest for b in parsed.blobs})
        ]
    if names:
        op.bulk_insert(table, names)


def downgrade() -> None:
    op.drop_index('ix_manifest_blobs_blob_digest', table_name='manifest_blobs')
    op.drop_table('manifest_blobs')
    op.drop_column('blobs', 'deleting_until')
    op.drop_column('blobs', 'touched_at')
