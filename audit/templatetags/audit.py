from django import template

from audit.selectors import audit_entries_of

register = template.Library()


@register.simple_tag(takes_context=True)
def audit_entries(context, obj):
    """{% audit_entries object as entries %}: the object's audit history for the viewer."""
    return audit_entries_of(obj=obj, user=context["request"].user)
