from django.urls import path

from preorders import views

app_name = "preorders"
urlpatterns = [
    path("preorders/", views.batch_index, name="index"),
    path("preorders/mine/", views.reservation_list, name="mine"),
    path("preorders/reservations/<int:pk>/", views.reservation_detail, name="reservation"),
    path(
        "preorders/reservations/<int:pk>/change/",
        views.reservation_change_view,
        name="reservation_change",
    ),
    path(
        "preorders/reservations/<int:pk>/cancel/",
        views.reservation_cancel_view,
        name="reservation_cancel",
    ),
    path("preorders/reservations/<int:pk>/pay/", views.reservation_pay, name="reservation_pay"),
    path(
        "preorders/reservations/<int:pk>/authenticate/",
        views.reservation_authenticate,
        name="reservation_authenticate",
    ),
    path("preorders/<slug:slug>/", views.batch_detail, name="detail"),
    path("preorders/<slug:slug>/progress/", views.batch_progress_fragment, name="progress"),
    path("preorders/<slug:slug>/reserve/", views.reserve, name="reserve"),
    path("preorders/<slug:slug>/reserve/form/", views.reserve_form, name="reserve_form"),
    path("preorders/<slug:slug>/waitlist/", views.waitlist_join_view, name="waitlist"),
]
