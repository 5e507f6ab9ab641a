"""Display names: what a member may call themselves, so that no one passes as a brand, as
Fanhub staff or as another member.

Names are compared by a "skeleton": NFKC, casefold, common homoglyphs and digit look-alikes
mapped to Latin letters, and everything that is not a letter dropped. "nimbus  TEAM",
"Nімbus Team" (Cyrillic і) and "N1mbus_team" all have the skeleton "nimbusteam".

accounts is a leaf app and imports no other app of ours: brands are reached through the
reverse relation that catalog's Brand.operators puts on the User model (`operated_brands`).
"""

import re
import unicodedata

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Model

from markup.text import text_clean_line

# Letters from other scripts that look like Latin ones, and digits and signs read as letters.
_LOOKALIKES = str.maketrans(
    {
        # Cyrillic
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
        "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i",
        "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ɡ": "g",
        # Greek
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
        "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ς": "s", "σ": "o",
        # digits and signs
        "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a",
        "$": "s", "!": "i", "|": "i",
        # l and i are one letter to the eye in many fonts
        "l": "i",
    }
)  # fmt: skip

# Words that turn a brand's name into a claim to speak for it: "Nimbus team", "Nimbus HQ".
_CLAIM_WORDS = (
    "official", "officiai", "team", "teams", "staff", "support", "help", "helpdesk", "care",
    "crew", "hq", "store", "shop", "the", "real", "account", "brand", "company", "inc",
)  # fmt: skip
_CLAIMS = sorted({w.translate(_LOOKALIKES) for w in _CLAIM_WORDS}, key=len, reverse=True)
# Names that claim to be Fanhub's own people, as whole words ("Maya the admin").
_STAFF_WORDS = {
    "admin", "admins", "administrator", "administrators", "staff", "moderator", "moderators",
    "mod", "mods", "fanhub", "official", "support", "sysop", "root", "system",
}  # fmt: skip
# ... and inside any squashed name ("FanHubSupport", "TheModerator").
# Not "admin" or "staff" here: "Badminton fan" and "Staffordshire" stay allowed.
_STAFF_PARTS = ("fanhub", "official", "moderator", "administrator")
# The name shown for a member who never chose one (User.public_name): nobody may take it.
_STAFF = {w.translate(_LOOKALIKES) for w in _STAFF_WORDS}
_PLACEHOLDER = re.compile(r"^member\s*#?\s*\d+$")
# The same as they look ("Μember #5.", "A former member"): what the site shows for members
# without a name and for deleted accounts.
_PLACEHOLDER_KEY = re.compile(
    r"^(member[0-9oieastb]{1,8}|aformermember|formermember|deletedmember)$"
)


def name_clean(value: str) -> str:
    """The stored form of a display name: one visible line, NFKC-normalized."""
    return text_clean_line(unicodedata.normalize("NFKC", value))


# Capitals and small capitals that look like Latin capitals, mapped before case-folding
# (folded, Greek "Ν" would become "ν", which looks like "v"), and invisible letters that
# render as blanks (Hangul fillers, the braille blank, the combining grapheme joiner).
_UPPER_LOOKALIKES = str.maketrans(
    {
        "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
        "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ı": "i", "ȷ": "j",
        "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ɪ": "i",
        "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r",
        "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
        "\u115f": None, "\u1160": None, "\u3164": None, "\uffa0": None, "\u2800": None,
        "\u034f": None, "\u200d": None, "\u200c": None,
    }
)  # fmt: skip


def _words(value: str) -> list[str]:
    folded = unicodedata.normalize("NFKC", value).translate(_UPPER_LOOKALIKES)
    folded = folded.casefold().translate(_LOOKALIKES)
    folded = unicodedata.normalize("NFKD", folded)  # accents apart, then dropped below
    words, current = [], []
    for char in folded:
        if unicodedata.category(char).startswith("L") or char.isdigit():
            current.append(char)  # digits that look like no letter ("Fan 6") stay apart
        elif unicodedata.category(char) == "Mn":
            continue
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


def name_skeleton(value: str) -> str:
    """What a name looks like to a reader, for comparing names that imitate each other."""
    return "".join(_words(value))


def _strip_claims(skeleton: str) -> tuple[str, bool]:
    """The skeleton without claim words before or after it, and whether there were any."""
    claimed = False
    changed = True
    while changed:
        changed = False
        for claim in _CLAIMS:
            if skeleton.endswith(claim) and len(skeleton) > len(claim):
                skeleton, changed, claimed = skeleton[: -len(claim)], True, True
            elif skeleton.startswith(claim) and len(skeleton) > len(claim):
                skeleton, changed, claimed = skeleton[len(claim) :], True, True
    return skeleton, claimed


def name_imitates_staff(value: str) -> bool:
    words = _words(value)
    squashed = "".join(words)
    if any(word in _STAFF for word in words) or _strip_claims(squashed)[0] in _STAFF:
        return True
    return any(part.translate(_LOOKALIKES) in squashed for part in _STAFF_PARTS)


def name_imitates_brand(value: str, brand_name: str, *, bare_first_word: bool = False) -> bool:
    """The brand's name, perhaps with claim words around it ("Nimbus Mobile team", "official
    nimbus"), or the first word of a brand's name with a claim word ("Nimbus team"); with
    `bare_first_word` (handles: "@nimbus" reads as the brand's own), that word alone too."""
    skeleton = name_skeleton(value)
    brand = name_skeleton(brand_name)
    if not brand or not skeleton:
        return False
    core, claimed = _strip_claims(skeleton)
    if brand in (skeleton, core):
        return True
    brand_words = _words(brand_name)
    first = brand_words[0] if brand_words else ""
    return (claimed or bare_first_word) and len(first) >= 3 and core == first


def _brand_model() -> type[Model] | None:
    from accounts.models import User

    try:
        return User._meta.get_field("operated_brands").related_model
    except Exception:  # catalog not installed: nothing to imitate
        return None


def check_not_imitating(*, text: str, user=None, what: str) -> None:
    """The one rule for public names and handles: nobody but staff passes for staff, and
    nobody but a brand's own operators (staff accounts in Brand.operators) for that brand."""
    is_staff = bool(user and (user.is_staff or user.is_superuser))
    if not is_staff and name_imitates_staff(text):
        raise ValidationError(
            f"That {what} sounds like Fanhub staff or a moderator. Choose another.",
            code="imitates_staff",
        )
    brand_model = _brand_model()
    if brand_model is None:
        return
    runs = bool(user and user.pk and user.is_staff)
    own = set(user.operated_brands.values_list("pk", flat=True)) if runs else set()
    for pk, brand_name in brand_model.objects.values_list("pk", "name"):
        if pk not in own and name_imitates_brand(
            text, brand_name, bare_first_word=what == "handle"
        ):
            raise ValidationError(
                f"That {what} sounds like the brand {brand_name}. Only its team can use it.",
                code="imitates_brand",
            )


def display_name_check(*, name: str, user=None) -> None:
    """Raise ValidationError when `name` (already cleaned with name_clean) may not be used by
    `user` (None for someone signing up). Operators may use their own brands' names; staff
    may use staff words; nobody may take another member's name (compared case-insensitively;
    the database enforces it too)."""
    from accounts.models import User

    if not name:
        return
    if not any(ch.isalnum() for ch in name):
        raise ValidationError("Use at least one letter or digit.", code="no_letters")
    if _PLACEHOLDER.match(name.casefold()) or _PLACEHOLDER_KEY.match(name_skeleton(name)):
        raise ValidationError("That name is reserved. Choose another.", code="reserved")
    check_not_imitating(text=name, user=user, what="name")
    key = name_skeleton(name)
    taken = User.objects.filter(
        models.Q(display_name__iexact=name) | (models.Q(name_key=key) if key else models.Q())
    )
    if user is not None and user.pk:
        taken = taken.exclude(pk=user.pk)
    if taken.exists():
        raise ValidationError("Another member already uses that name.", code="taken")
