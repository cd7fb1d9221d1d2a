"""Ownership rules: one place decides who may see or change what."""

from auth.viewer import Viewer


def can_see_contact_details(viewer: Viewer, user_id: int) -> bool:
    """A user's email and phone are theirs and the admins' to see."""
    return viewer.user_id == user_id or viewer.is_admin
