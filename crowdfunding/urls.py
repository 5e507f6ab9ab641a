from django.urls import path

from crowdfunding import views

app_name = "crowdfunding"
urlpatterns = [
    path("campaigns/", views.campaign_index, name="index"),
    path("campaigns/mine/", views.my_campaigns_view, name="mine"),
    path("campaigns/pledges/<int:pk>/", views.pledge_detail, name="pledge"),
    path("campaigns/pledges/<int:pk>/change/", views.pledge_change_view, name="pledge_change"),
    path("campaigns/pledges/<int:pk>/cancel/", views.pledge_cancel_view, name="pledge_cancel"),
    path("campaigns/pledges/<int:pk>/pay/", views.pledge_pay_view, name="pledge_pay"),
    path(
        "campaigns/pledges/<int:pk>/authenticate/",
        views.pledge_authenticate,
        name="pledge_authenticate",
    ),
    path("campaigns/<slug:slug>/", views.campaign_detail, name="detail"),
    path("campaigns/<slug:slug>/progress/", views.campaign_progress_fragment, name="progress"),
    path("campaigns/<slug:slug>/pledge/", views.pledge_create_view, name="pledge_create"),
    path("campaigns/<slug:slug>/follow/", views.follow_view, name="follow"),
    path("campaigns/<slug:slug>/comments/", views.comment_create_view, name="comment"),
    path(
        "campaigns/<slug:slug>/comments/<int:pk>/report/",
        views.comment_report_view,
        name="comment_report",
    ),
    path("campaigns/<slug:slug>/updates/<int:pk>/", views.update_detail, name="update"),
]
