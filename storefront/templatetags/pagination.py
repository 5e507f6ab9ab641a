from django import template
from django.core.paginator import Page

register = template.Library()


@register.filter
def page_links(page_obj: Page) -> list[tuple[int | None, str]]:
    """The page numbers to show: first, last, and two either side of the current page, with
    gaps. Computed here, not by looping over every page in the template: a listing of 100,000
    products has 4,000 pages, and that loop was most of the page's rendering time."""
    links: list[tuple[int | None, str]] = []
    for number in page_obj.paginator.get_elided_page_range(
        page_obj.number, on_each_side=2, on_ends=1
    ):
        if number == page_obj.paginator.ELLIPSIS:
            links.append((None, "gap"))
        elif number == page_obj.number:
            links.append((number, "current"))
        elif abs(number - page_obj.number) == 2 and number not in (1, page_obj.paginator.num_pages):
            links.append((number, "far"))
        else:
            links.append((number, "page"))
    return links
