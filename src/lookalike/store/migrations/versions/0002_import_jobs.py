"""Background import jobs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("catalog_path", sa.Text(), nullable=False),
        sa.Column("total", sa.Integer()),
        sa.Column("processed", sa.Integer()),
        sa.Column("added", sa.Integer()),
        sa.Column("updated", sa.Integer()),
        sa.Column("unchanged", sa.Integer()),
        sa.Column("errors", sa.JSON()),
        sa.Column("message", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("import_jobs")
