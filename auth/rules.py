"""Who may see or change what: the ownership rules, as plain functions over plain values.

``actor`` is the acting user as their account is now (None when anonymous or suspended):
the roles in an access token are a hint for the client, so a role change or a suspension
takes effect at the next request. Callers fetch the actor and the owner ids; these functions
only decide, so services, resolvers and schema types all ask the same question the same way.
"""

from collections.abc import Collection
from typing import Protocol

from db.states import ListingModeration, ListingStatus, Role


class Actor(Protocol):
    """A user as the rules need one: a ``User``, or a loader row of one."""

    @property
    def id(self) -> int: ...

    @property
    def roles(self) -> Collection[str]: ...


def has_role(actor: Actor | None, role: Role) -> bool:
    return actor is not None and role in actor.roles


def is_admin(actor: Actor | None) -> bool:
    return has_role(actor, Role.ADMIN)


def can_see_user_private_fields(actor: Actor | None, user_id: int) -> bool:
    """A user's email, phone and preferences are theirs and the admins' to see."""
    return actor is not None and (actor.id == user_id or is_admin(actor))


def can_change_listing(actor: Actor | None, *, host_id: int) -> bool:
    return actor is not None and (actor.id == host_id or is_admin(actor))


def listing_is_public(*, status: str, deleted: bool, moderation: str) -> bool:
    """Published listings the admins approved are everyone's to see, signed in or not."""
    return (
        status == ListingStatus.PUBLISHED
        and not deleted
        and moderation == ListingModeration.APPROVED
    )


def can_see_listing(
    actor: Actor | None, *, host_id: int, status: str, deleted: bool, moderation: str
) -> bool:
    """Public listings, and the host's (and the admins') own drafts, unlisted, suspended and
    unapproved ones; a deleted listing is nobody's."""
    return listing_is_public(status=status, deleted=deleted, moderation=moderation) or (
        not deleted and can_change_listing(actor, host_id=host_id)
    )


def can_see_moderation(actor: Actor | None, *, host_id: int) -> bool:
    """Where a listing stands with the admins is for its host and the admins to know."""
    return can_change_listing(actor, host_id=host_id)


def can_publish_listing(actor: Actor | None, *, status: str) -> bool:
    """An admin suspended a listing: only an admin puts it back in front of guests."""
    return status != ListingStatus.SUSPENDED or is_admin(actor)


def can_see_booking(actor: Actor | None, *, guest_id: int, host_id: int) -> bool:
    """A booking is its guest's, its host's and the admins' to see (and to act on, as each
    side may)."""
    return actor is not None and (actor.id in (guest_id, host_id) or is_admin(actor))


def can_see_payout(actor: Actor | None, *, host_id: int) -> bool:
    """A payout is its host's (and the admins') to see; its guest's is the payment."""
    return actor is not None and (actor.id == host_id or is_admin(actor))


def can_see_review(actor: Actor | None, *, author_id: int, published: bool, hidden: bool) -> bool:
    """Double-blind: until it is published a review is its author's (and the admins') alone;
    then everyone's, unless an admin hid it (the admins still see it, marked)."""
    if published and not hidden:
        return True
    return actor is not None and (actor.id == author_id or is_admin(actor))


def can_review_stay(actor: Actor | None, *, guest_id: int) -> bool:
    """A stay is reviewed by its guest alone."""
    return actor is not None and actor.id == guest_id


def can_review_guest(actor: Actor | None, *, host_id: int) -> bool:
    """A guest is reviewed by the host of the listing they stayed at."""
    return actor is not None and actor.id == host_id


def can_answer_review(actor: Actor | None, *, host_id: int) -> bool:
    """A review of a stay is answered by the listing's host."""
    return actor is not None and actor.id == host_id


def can_moderate_reviews(actor: Actor | None) -> bool:
    return is_admin(actor)


def is_thread_participant(actor: Actor | None, *, guest_id: int, host_id: int) -> bool:
    """A conversation is its guest's and its host's alone: admins do not read it."""
    return actor is not None and actor.id in (guest_id, host_id)


def can_start_thread_about_listing(actor: Actor | None, *, host_id: int) -> bool:
    """A guest writes to a listing's host; its host has nobody to write to there."""
    return actor is not None and actor.id != host_id
