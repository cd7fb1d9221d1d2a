"""The admin web dashboard at /admin: server-rendered pages (Jinja templates) over the same
services as the GraphQL admin operations. ``routes`` is mounted by app/http.py."""

from starlette.routing import Route

from app.admin import money_pages, pages

routes = [
    Route("/admin", pages.home, methods=["GET"]),
    Route("/admin/login", pages.sign_in_form, methods=["GET"]),
    Route("/admin/login", pages.sign_in, methods=["POST"]),
    Route("/admin/logout", pages.sign_out, methods=["POST"]),
    Route("/admin/static/admin.css", pages.stylesheet, methods=["GET"]),
    Route("/admin/users", pages.users, methods=["GET"]),
    Route("/admin/users/{user_id:int}", pages.user, methods=["GET"]),
    Route("/admin/users/{user_id:int}/status", pages.set_user_status, methods=["POST"]),
    Route("/admin/users/{user_id:int}/roles", pages.set_user_role, methods=["POST"]),
    Route(
        "/admin/users/{user_id:int}/password-reset", pages.force_password_reset, methods=["POST"]
    ),
    Route("/admin/listings", pages.listings_page, methods=["GET"]),
    Route("/admin/listings/{listing_id:int}", pages.listing, methods=["GET"]),
    Route("/admin/listings/{listing_id:int}/suspend", pages.suspend_listing, methods=["POST"]),
    Route("/admin/listings/{listing_id:int}/restore", pages.restore_listing, methods=["POST"]),
    Route("/admin/listings/{listing_id:int}/approve", pages.approve_listing, methods=["POST"]),
    Route("/admin/listings/{listing_id:int}/flag", pages.flag_listing, methods=["POST"]),
    Route("/admin/moderation", pages.moderation_queue, methods=["GET"]),
    Route("/admin/settings", pages.settings_page, methods=["GET"]),
    Route("/admin/settings", pages.save_settings, methods=["POST"]),
    Route("/admin/bookings", pages.bookings_page, methods=["GET"]),
    Route("/admin/bookings/{booking_id:int}", pages.booking, methods=["GET"]),
    Route("/admin/bookings/{booking_id:int}/cancel", money_pages.cancel_booking, methods=["POST"]),
    Route("/admin/payments", pages.payments_page, methods=["GET"]),
    Route("/admin/payments/{payment_id:int}/refund", money_pages.refund_payment, methods=["POST"]),
    Route("/admin/payouts", money_pages.payouts_page, methods=["GET"]),
    Route("/admin/payouts/{payout_id:int}/retry", money_pages.retry_payout, methods=["POST"]),
    Route("/admin/events", money_pages.events_page, methods=["GET"]),
    Route("/admin/disputes", money_pages.disputes_page, methods=["GET"]),
    Route("/admin/disputes/{dispute_id:int}", money_pages.dispute, methods=["GET"]),
    Route("/admin/disputes/{dispute_id:int}/notes", money_pages.add_dispute_note, methods=["POST"]),
    Route(
        "/admin/disputes/{dispute_id:int}/resolve",
        money_pages.resolve_dispute,
        methods=["POST"],
    ),
    Route("/admin/audit", pages.audit_page, methods=["GET"]),
]

PUBLIC_PATHS = frozenset({"/admin/login", "/admin/static/admin.css"})
"""Every other route is for signed-in admins only."""
