from django.urls import path

from orders import views

app_name = "orders"
urlpatterns = [
    path("cart/", views.cart_view, name="cart"),
    path("cart/add/", views.cart_add_view, name="cart_add"),
    path("cart/update/", views.cart_update_view, name="cart_update"),
    path("cart/code/", views.cart_code_view, name="cart_code"),
    path("checkout/", views.checkout, name="checkout"),
    path("checkout/totals/", views.checkout_totals_view, name="checkout_totals"),
    path("orders/", views.order_list, name="list"),
    path("orders/<str:number>/", views.order_detail, name="detail"),
    path("orders/<str:number>/pay/", views.order_pay_view, name="pay"),
    path("orders/<str:number>/authenticate/", views.order_authenticate, name="authenticate"),
    path("account/cards/", views.saved_cards, name="saved_cards"),
    path("account/cards/<int:pk>/delete/", views.saved_card_delete, name="saved_card_delete"),
]
