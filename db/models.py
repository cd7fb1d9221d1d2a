"""SQLAlchemy models: the tables of Roost."""

from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class User(Base):
    """A person with an account: every user is a guest; some are hosts, a few are admins."""

    __tablename__ = "user_account"
    __table_args__ = (
        # One account per address, whatever its case.
        Index("uq_user_account_email_lower", func.lower(text("email")), unique=True),
        CheckConstraint("status IN ('active', 'suspended')", name="status"),
        CheckConstraint("'GUEST' = ANY(roles)", name="every_user_is_a_guest"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(Text)
    first_name: Mapped[str] = mapped_column(Text)
    last_name: Mapped[str] = mapped_column(Text)
    bio: Mapped[str | None] = mapped_column(Text)
    avatar_upload_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("upload.id", ondelete="SET NULL", use_alter=True)
    )
    roles: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default=text("ARRAY['GUEST']"), nullable=False
    )
    status: Mapped[str] = mapped_column(Text, server_default="active")
    # None for an account that only ever signed in through Google or Facebook.
    password_hash: Mapped[str | None] = mapped_column(Text)
    # AES-GCM ciphertext (auth.crypto.FieldCipher); never the number itself.
    phone_encrypted: Mapped[str | None] = mapped_column(Text)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    currency: Mapped[str] = mapped_column(Text, server_default="USD")
    language: Mapped[str] = mapped_column(Text, server_default="en")
    time_zone: Mapped[str] = mapped_column(Text, server_default="UTC")
    notification_channels: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default=text("ARRAY['EMAIL', 'IN_APP']"), nullable=False
    )
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )

    avatar: Mapped["Upload | None"] = relationship(
        foreign_keys=[avatar_upload_id], lazy="joined", innerjoin=False
    )


class Upload(Base):
    """An image a user uploaded, stored re-encoded without its metadata, with a thumbnail."""

    __tablename__ = "upload"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    owner_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    storage_key: Mapped[str] = mapped_column(Text, unique=True)
    thumbnail_key: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(Text)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at_column()


class OAuthIdentity(Base):
    """A Google or Facebook account linked to a Roost user."""

    __tablename__ = "oauth_identity"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class RefreshToken(Base):
    """One refresh token. Its family is a sign-in session: every rotation stays in the family,
    and reuse of a rotated token revokes the whole family."""

    __tablename__ = "refresh_token"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[UUID] = mapped_column(Uuid, index=True)
    # SHA-256 of the token: the token itself is never stored.
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user_agent: Mapped[str | None] = mapped_column(Text)
    ip_address: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class OneTimeToken(Base):
    """A single-use token mailed to a user: a password reset or an email verification."""

    __tablename__ = "one_time_token"
    __table_args__ = (
        CheckConstraint("purpose IN ('password_reset', 'email_verification')", name="purpose"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
