"""Placeholder: the shopper pages are being written (see preorders/urls.py for the routes)."""

from django.http import Http404


def _not_yet(*args, **kwargs):
    raise Http404


batch_index = reservation_list = reservation_detail = reservation_change_view = _not_yet
reservation_cancel_view = reservation_pay = reservation_authenticate = _not_yet
batch_detail = batch_progress_fragment = reserve = waitlist_join_view = _not_yet
