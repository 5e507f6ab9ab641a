"""Post images, served only to readers of the post.

Choice: a permission-checking view, not signed URLs. `/c/<slug>/posts/<id>/image/` answers
only when the reader may read the post (the community's "content is readable" rule of
`selectors.post_for`: public, or an active member; and the post neither hidden nor deleted),
else 404, exactly like the post page. A link copied out of a private community, a banned
member, or a post hidden since then all get 404, because the check runs on every request.

Where the files live: post images are stored in their own storage (`post_image_storage`),
never under `MEDIA_ROOT`, so the web server's (or, in DEBUG, Django's) `/media/` never serves
them and an old `/media/communities/posts/<uuid>.jpg` URL finds nothing (migration 0005 moved
the files stored there before). Which storage:

- `STORAGES["community_posts"]` when the settings define it (a private S3 bucket, say);
- otherwise, when the default storage is on disk, a directory beside `MEDIA_ROOT`:
  `COMMUNITY_POST_MEDIA_ROOT`, default `<MEDIA_ROOT>-private`;
- otherwise (tests: InMemoryStorage) the default storage itself, which has no public URL.

How the view hands the file over, by the `COMMUNITY_MEDIA_DELIVERY` setting:

- `"stream"` (default; development and tests): Django streams it with `FileResponse`.
- `"x-accel-redirect"` (nginx): an empty response with `X-Accel-Redirect:
  <COMMUNITY_MEDIA_INTERNAL_PREFIX><name>`; nginx serves the file from an `internal` location
  (`location /_post_media/ { internal; alias <the private root>/; }`).
- `"x-sendfile"` (Apache mod_xsendfile, lighttpd): `X-Sendfile: <absolute path>`.
- `"redirect"` (a remote storage such as a private S3 bucket with querystring auth): a
  redirect to `storage.url(name)`, a short-lived signed URL made after the check.

Caching: a public community's image is `Cache-Control: public` (it never changes under its
name); everyone else's is `private, no-store`, so no shared cache keeps a member's copy.
"""

from __future__ import annotations

import mimetypes
import posixpath
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect

if TYPE_CHECKING:
    from communities.models import Post

PUBLIC_IMAGE_SECONDS = 86_400


def post_image_storage() -> Storage:
    """The storage of `Post.image` (a callable, so the migration names it, not a path)."""
    if "community_posts" in settings.STORAGES:
        return storages["community_posts"]
    default = storages["default"]
    if isinstance(default, FileSystemStorage):
        root = getattr(settings, "COMMUNITY_POST_MEDIA_ROOT", None) or (
            f"{str(settings.MEDIA_ROOT).rstrip('/')}-private"
        )
        # base_url is never used: templates link to the view (Post.image_url).
        return FileSystemStorage(location=root, base_url="/no-public-url/")
    return default


def post_image_response(*, post: Post, public: bool) -> HttpResponse:
    """Hand over the image of a post the caller has checked the reader may read."""
    storage, name = post.image.storage, post.image.name
    delivery = getattr(settings, "COMMUNITY_MEDIA_DELIVERY", "stream")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response: HttpResponse
    if delivery == "redirect":  # a remote private storage: a signed URL made after the check
        response = HttpResponseRedirect(storage.url(name))
        response["Cache-Control"] = "private, no-store"
        return response
    if delivery == "x-accel-redirect":
        prefix = getattr(settings, "COMMUNITY_MEDIA_INTERNAL_PREFIX", "/_post_media/")
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = posixpath.join(prefix, name)
    elif delivery == "x-sendfile":
        response = HttpResponse(content_type=content_type)
        response["X-Sendfile"] = storage.path(name)
    else:
        if not storage.exists(name):
            raise Http404("No such image")
        response = FileResponse(
            storage.open(name, "rb"), filename=posixpath.basename(name), content_type=content_type
        )
    response["Cache-Control"] = (
        f"public, max-age={PUBLIC_IMAGE_SECONDS}" if public else "private, no-store"
    )
    return response
