from django.urls import path

from catalog import views

app_name = "catalog"
urlpatterns = [
    path("products/", views.product_list, name="index"),
    path("products/<slug:slug>/variant/", views.variant_panel, name="variant"),
    path("team/invitations/<str:token>/", views.invitation, name="invitation"),
    path("categories/<path:path>/", views.category_detail, name="category"),
]
