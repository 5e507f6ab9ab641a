from django.urls import path
from django.views.generic import TemplateView

from catalog import views

app_name = "catalog"
urlpatterns = [
    # An empty listing until the catalogue issue adds products and search here.
    path(
        "products/",
        TemplateView.as_view(
            template_name="section_index.html",
            extra_context={
                "section_title": "Shop",
                "section_lead": "Products from the brands you follow.",
                "empty_message": "The shop opens soon: no products are listed yet.",
            },
        ),
        name="index",
    ),
    path("brands/<slug:slug>/", views.brand_detail, name="brand"),
]
