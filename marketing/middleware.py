from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from marketing.placements import SESSION_KEY, scans_follow


class ScanFollowMiddleware:
    """After sign-in or sign-up, the placements this browser scanned follow the account
    (marketing.placements.scans_follow); once, the session's list is dropped. Costs nothing
    for requests whose session holds no scan. After orders' CartMergeMiddleware, so a
    claimed voucher lands in the merged cart."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and SESSION_KEY in request.session:
            scans_follow(user=request.user, pending=request.session.pop(SESSION_KEY))
        return self.get_response(request)
