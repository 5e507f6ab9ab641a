"""Markdown source in, sanitized HTML out.

Users write Markdown; we store the source and render it once (on save) through an nh3
allow-list, so whatever the Markdown library lets through (raw HTML, javascript: links,
event-handler attributes) never reaches a page.
"""

import markdown as markdown_lib
import nh3

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "strong",
    "em",
    "b",
    "i",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h2",
    "h3",
    "h4",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "del",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


def markdown_render(source: str) -> str:
    """Return sanitized HTML for `source`. Links get rel="nofollow noopener noreferrer"."""
    html = markdown_lib.markdown(
        source or "", extensions=["extra", "sane_lists"], output_format="html"
    )
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="nofollow noopener noreferrer",
    )
