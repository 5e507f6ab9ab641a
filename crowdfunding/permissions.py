"""What a brand operator may do with campaigns in the admin (scoped to their brands): the
demo's operators group and crowdfunding/migrations/0002 grant these."""

CROWDFUNDING_OPERATOR_PERMISSIONS = [
    *(
        f"{action}_{model}"
        for action in ("view", "add", "change", "delete")
        for model in ("campaign", "rewardtier", "stretchgoal", "campaignupdate")
    ),
    "view_pledge",
    "view_rewardticket",
    "change_rewardticket",  # check-in
    "view_campaigncomment",
    "change_campaigncomment",  # hide
    "view_commentreport",
    "view_campaignevent",
]
