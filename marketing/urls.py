from django.urls import path

from marketing import views

app_name = "marketing"
urlpatterns = [
    path("q/<str:token>/", views.scan, name="scan"),
    path("v/<str:code>/", views.voucher_link, name="voucher_link"),
]
