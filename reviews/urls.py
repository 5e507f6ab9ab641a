from django.urls import path

from reviews import views

app_name = "reviews"
urlpatterns = [
    path("products/<slug:slug>/review/", views.review_submit, name="submit"),
    path("reviews/<int:pk>/delete/", views.review_remove, name="delete"),
    path("reviews/<int:pk>/report/", views.review_report_submit, name="report"),
    path("wishlist/", views.wishlist, name="wishlist"),
    path("wishlist/<int:product_id>/toggle/", views.wishlist_toggle_view, name="wishlist_toggle"),
]
